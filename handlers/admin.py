"""/pegawai: the roster by bidang; for the admin, deactivating a person (successor and
reason chosen with buttons); for the admin and the Kadis, appointing a Plh./Plt. in a
short guided conversation (its state lives in the ``conversation`` table) and cancelling
one. /alihkan: the Kasubag, Sekretaris or Kadis gives an open step to another person.

Wiring only: every decision is in ``bot.core.administration``, which checks again who asks.
"""
from __future__ import annotations

import html
from datetime import datetime, timedelta

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import callbacks, render
from bot.core.administration import (
    APPOINT_ROLES, HOLDER_ROLES, PEOPLE_ROLES, REASSIGN_ANY, REASSIGN_COLLECT, ROSTER_ROLES,
    Administration, parse_range, range_text,
)
from bot.texts import Raw, role_title, t
from bot.core.workcal import to_wib
from bot.core.workflow import StaleAction, WorkflowError
from handlers.common import (
    _acting_office, Context, action, clear_conversation, get_conversation, office_command,
    refresh_menu, reply, services, set_conversation, text_route, transaction,
)
from models import ActingKind, Person, Unit
from models.enums import Role, StepStatus

SLOT_ROLES = {1: Role.KADIS, 2: Role.SEKRETARIS, 3: Role.KASUBAG, 4: Role.KABID}
REASON_CODES = {1: "mutasi", 2: "pensiun", 3: "lainnya"}
KIND_CODES = {1: ActingKind.PLH, 2: ActingKind.PLT}
CONV = "appoint"
LABEL = 60


def _label(text: str) -> str:
    """A label from a catalogue text: ``t()`` escaped its data for HTML, undone here.
    Raw data (a person's name) goes to ``render.label`` directly."""
    return render.label(html.unescape(text), LABEL)


def _adm(session, context: Context) -> Administration:
    return Administration(session, services(context), _acting_office.get())


def _person_label(p: Person) -> str:
    """A plain label from the raw name: nothing to unescape ("A &amp; B" stays so)."""
    return render.label(f"{p.name} - {role_title(p.role)}", LABEL)


def _people_page(head: str, choices: list[tuple[str, str]], number: int, action: str,
                 args: tuple[int, ...], last: list | None = None):
    """One page of a people picker: ``choices`` are (plain label, callback data); 10 a
    page with "‹ Sebelumnya" / "Berikutnya ›" (``action`` with ``args`` and the page),
    so nobody down the list is out of reach. Returns the text and the keyboard."""
    pg = render.page(head, [render.esc(text) for text, _data in choices], (), number)
    rows = [[choices[i]] for i in pg.items]
    nav = render.pager(action, args, pg)
    if nav:
        rows.append(nav)
    if last:
        rows.append(last)
    return pg.text, rows


# ----------------------------------------------------------------- /pegawai
async def _menu(adm: Administration, person: Person) -> list[list[tuple[str, str]]]:
    rows = []
    if person.role in PEOPLE_ROLES:
        rows.append([(t("a.b_deactivate"), callbacks.encode("pgw", 1, person.office_id))])
    if person.role in APPOINT_ROLES:
        rows.append([(t("a.b_appoint"), callbacks.encode("pgw", 2, person.office_id))])
        for appt in await adm.appointments():
            title = await adm.slot_title(appt.role, appt.unit_id)
            rows.append([(_label(t("a.b_cancel_appt", kind=appt.kind.label, title=title)),
                          callbacks.encode("plhx", appt.id))])
    return rows


@office_command(2, "pegawai", *ROSTER_ROLES)
async def roster(update: Update, context: Context, person: Person, _cb) -> None:
    async with transaction(context) as (session, _wf):
        adm = _adm(session, context)
        text = await adm.roster_text(person)
        buttons = await _menu(adm, person)
    await reply(update, text, buttons)  # reply() splits a long roster at line ends


@action(*ROSTER_ROLES, callback=True)
async def menu(update: Update, context: Context, person: Person, cb) -> None:
    choice, number = cb.arg(0), 0
    if cb.action == "pgxl":  # a page of the people to deactivate
        choice, number = 1, cb.arg(1)
    close = [(t("a.b_cancel"), callbacks.encode("pgw", 9, person.office_id))]
    async with transaction(context) as (session, _wf):
        adm = _adm(session, context)
        if choice == 1 and person.role in PEOPLE_ROLES:
            people = await adm.active_people(person.office_id, but=person.id)
            text, buttons = _people_page(
                t("a.pick_person"),
                [(_person_label(p), callbacks.encode("pgx", p.id)) for p in people], number,
                "pgxl", (person.office_id,), close)
        elif choice == 2 and person.role in APPOINT_ROLES:
            await set_conversation(session, person.id, CONV, "slot", {})
            office = await adm.wf.office()
            units = await adm.units(office.id)
            rows = [[(role_title(Role.KADIS), callbacks.encode("plhr", 1, 0))],
                    [(role_title(Role.SEKRETARIS), callbacks.encode("plhr", 2, 0))],
                    [(role_title(Role.KASUBAG), callbacks.encode("plhr", 3, 0))]]
            for u in units:
                rows.append([(_label(await adm.slot_title(Role.KABID, u.id)),
                              callbacks.encode("plhr", 4, u.id))])
            rows.append([(t("a.b_cancel"), callbacks.encode("plhok", 0))])
            text, buttons = t("a.pick_slot"), rows
        elif choice == 9:
            text, buttons = t("a.flow_cancelled"), None
        else:
            raise StaleAction()
    await reply(update, text, buttons, edit=True)


# ----------------------------------------------------------------- deactivate
@action(*PEOPLE_ROLES, callback=True)
async def pick_deactivate(update: Update, context: Context, person: Person, cb) -> None:
    async with transaction(context) as (session, _wf):
        adm = _adm(session, context)
        target = await adm.person(cb.arg(0))
        if not target.active:
            raise StaleAction()
        runs, items = await adm.open_runs_of(target), await adm.open_items_of(target)
        if runs or items:
            default = await adm.default_successor(target)
            choices = []
            for p in await adm.successor_choices(target):  # all of them, paged
                label = render.button_text("a.b_default", LABEL, name=p.name) \
                    if default is not None and p.id == default.id else _person_label(p)
                choices.append((label, callbacks.encode("pgxs", target.id, p.id)))
            number = cb.arg(1) if cb.action == "pgxp" else 0
            text, rows = _people_page(
                t("a.pick_successor", name=target.name, runs=len(runs), items=len(items)),
                choices, number, "pgxp", (target.id,),
                [(t("a.b_cancel"), callbacks.encode("pgw", 9, person.office_id))])
        else:
            text, rows = _reason_prompt(target, None)
    await reply(update, text, rows, edit=True)


def _reason_prompt(target: Person, successor: Person | None):
    note = t("a.successor_note", name=successor.name) if successor else ""
    sid = successor.id if successor else 0
    rows = [[(t(f"a.b_reason_{name}"), callbacks.encode("pgxr", target.id, sid, code))
             for code, name in REASON_CODES.items()],
            [(t("a.b_cancel"), callbacks.encode("pgw", 9, target.office_id))]]
    return t("a.pick_reason", name=target.name, successor=Raw(note)), rows


@action(*PEOPLE_ROLES, callback=True)
async def pick_successor(update: Update, context: Context, person: Person, cb) -> None:
    async with transaction(context) as (session, _wf):
        adm = _adm(session, context)
        target, successor = await adm.person(cb.arg(0)), await adm.person(cb.arg(1))
        if not target.active:
            raise StaleAction()
        text, rows = _reason_prompt(target, successor)
    await reply(update, text, rows, edit=True)


@action(*PEOPLE_ROLES, callback=True)
async def do_deactivate(update: Update, context: Context, person: Person, cb) -> None:
    reason = REASON_CODES.get(cb.arg(2))
    if reason is None:
        raise StaleAction()
    async with transaction(context) as (session, _wf):
        adm = _adm(session, context)
        account = (await adm.person(cb.arg(0))).telegram_user_id  # unbound by deactivating
        result = await adm.deactivate(person, cb.arg(0), successor_id=cb.arg(1) or None,
                                      reason=reason)
        if result.runs or result.items:
            text = t("a.deactivated", name=result.person.name, reason=reason,
                     runs=len(result.runs), items=len(result.items),
                     successor=result.successor.name)
        else:
            text = t("a.deactivated_plain", name=result.person.name, reason=reason)
    await reply(update, text, None, edit=True)
    await refresh_menu(context, account)  # its roles in other offices, or the default


# ----------------------------------------------------------------- appoint Plh./Plt.
async def _appoint_conv(session, person: Person, state: str):
    conv = await get_conversation(session, person.id)
    if conv is None or conv.kind != CONV or conv.state != state:
        raise StaleAction()
    return conv


@action(*APPOINT_ROLES, callback=True)
async def pick_slot(update: Update, context: Context, person: Person, cb) -> None:
    role = SLOT_ROLES.get(cb.arg(0))
    if role is None:
        raise StaleAction()
    unit_id = cb.arg(1) or None if role == Role.KABID else None
    async with transaction(context) as (session, _wf):
        await _appoint_conv(session, person, "slot")
        adm = _adm(session, context)
        office = await adm.wf.office()
        absent = await adm.natural_holder(office.id, role, unit_id)
        title = await adm.slot_title(role, unit_id)
        data = {"role": role.value, "unit": unit_id, "absent": absent.id if absent else None}
        await set_conversation(session, person.id, CONV, "person", data)
        text, rows = await _acting_page(adm, office.id, data, title, 0)
    await reply(update, text, rows, edit=True)


async def _acting_page(adm: Administration, office_id: int, data: dict, title: str,
                       number: int):
    """A page of the people who may be appointed (the absent official left out)."""
    people = await adm.active_people(office_id, roles=HOLDER_ROLES)
    order = {Role.KADIS: 0, Role.SEKRETARIS: 1, Role.KASUBAG: 2, Role.KABID: 3,
             Role.STAF: 4}
    absent = await adm.s.get(Person, data["absent"]) if data.get("absent") else None
    people = sorted((p for p in people if absent is None or p.id != absent.id),
                    key=lambda p: (order[p.role], p.id))
    note = t("a.absent_note", name=absent.name) if absent else ""
    return _people_page(
        t("a.pick_acting", title=title, absent=Raw(note)),
        [(_person_label(p), callbacks.encode("plhp", p.id)) for p in people], number,
        "plhl", (), [(t("a.b_cancel"), callbacks.encode("plhok", 0))])


@action(*APPOINT_ROLES, callback=True)
async def acting_page(update: Update, context: Context, person: Person, cb) -> None:
    """Another page of the people who may be appointed (the conversation is unchanged)."""
    async with transaction(context) as (session, _wf):
        conv = await _appoint_conv(session, person, "person")
        adm = _adm(session, context)
        office = await adm.wf.office()
        data = dict(conv.data)
        title = await adm.slot_title(Role(data["role"]), data["unit"])
        text, rows = await _acting_page(adm, office.id, data, title, cb.arg(0))
    await reply(update, text, rows, edit=True)


@action(*APPOINT_ROLES, callback=True)
async def pick_acting(update: Update, context: Context, person: Person, cb) -> None:
    async with transaction(context) as (session, _wf):
        conv = await _appoint_conv(session, person, "person")
        adm = _adm(session, context)
        acting = await adm.person(cb.arg(0))
        data = dict(conv.data, acting=acting.id)
        await set_conversation(session, person.id, CONV, "kind", data)
        title = await adm.slot_title(Role(data["role"]), data["unit"])
    await reply(update, t("a.pick_kind", name=acting.name, title=title),
                [[(t("a.b_plh"), callbacks.encode("plhk", 1)),
                  (t("a.b_plt"), callbacks.encode("plhk", 2))],
                 [(t("a.b_cancel"), callbacks.encode("plhok", 0))]], edit=True)


@action(*APPOINT_ROLES, callback=True)
async def pick_kind(update: Update, context: Context, person: Person, cb) -> None:
    kind = KIND_CODES.get(cb.arg(0))
    if kind is None:
        raise StaleAction()
    async with transaction(context) as (session, wf):
        conv = await _appoint_conv(session, person, "kind")
        await set_conversation(session, person.id, CONV, "range",
                               dict(conv.data, kind=kind.value))
        today = to_wib(wf.now).date()
        example = f"{today:%d-%m-%Y} s.d. {today + timedelta(days=2):%d-%m-%Y}"
    from bot.core.workcal import office_zone
    from reports.numbers import zone_label

    zone = zone_label(services(context).clock.now().astimezone(office_zone()))
    await reply(update, t("a.ask_range", example=example, zone=zone), None, edit=True)


@text_route(CONV)
async def appoint_text(update: Update, context: Context, person: Person, conv) -> None:
    text = (update.effective_message.text or "").strip()
    try:
        async with transaction(context) as (session, _wf):
            if person.role not in APPOINT_ROLES:
                await clear_conversation(session, person.id)
                await reply(update, t("err.not_allowed"))
                return
            adm = _adm(session, context)
            data = dict(conv.data)
            if conv.state == "range":
                starts, ends = parse_range(text)
                data.update(starts=starts.isoformat(), ends=ends.isoformat())
                await set_conversation(session, person.id, CONV, "decree", data)
                answer, buttons = t("a.ask_decree"), None
            elif conv.state == "decree":
                data["decree"] = "" if text in ("-", "") else text[:100]
                await set_conversation(session, person.id, CONV, "confirm", data)
                answer, buttons = await _confirm_text(adm, data), [
                    [(t("a.b_save"), callbacks.encode("plhok", 1)),
                     (t("a.b_cancel"), callbacks.encode("plhok", 0))]]
            else:
                answer, buttons = t("o.no_conversation"), None
    except WorkflowError as exc:
        await reply(update, exc.message)
        return
    await reply(update, answer, buttons)


async def _confirm_text(adm: Administration, data: dict) -> str:

    acting = await adm.person(data["acting"])
    absent = await adm.s.get(Person, data["absent"]) if data.get("absent") else None
    kind = ActingKind(data["kind"])
    decree = t("a.decree", decree=data["decree"]) if data.get("decree") else ""
    return t("a.confirm", kind=kind.label,
             title=await adm.slot_title(Role(data["role"]), data["unit"]), name=acting.name,
             absent=absent.name if absent else "-",
             range=range_text(datetime.fromisoformat(data["starts"]),
                              datetime.fromisoformat(data["ends"])), decree=Raw(decree))


@action(*APPOINT_ROLES, callback=True)
async def confirm(update: Update, context: Context, person: Person, cb) -> None:

    if cb.arg(0) == 0:
        async with transaction(context) as (session, _wf):
            await clear_conversation(session, person.id)
        await reply(update, t("a.flow_cancelled"), None, edit=True)
        return
    try:
        async with transaction(context) as (session, _wf):
            conv = await _appoint_conv(session, person, "confirm")
            data = conv.data
            adm = _adm(session, context)
            appt = await adm.appoint(
                person, role=Role(data["role"]), unit_id=data["unit"],
                acting_id=data["acting"], absent_id=data.get("absent"),
                kind=ActingKind(data["kind"]),
                starts_at=datetime.fromisoformat(data["starts"]),
                ends_at=datetime.fromisoformat(data["ends"]), decree=data.get("decree", ""))
            await clear_conversation(session, person.id)
            acting = await session.get(Person, appt.acting_person_id)
            account = acting.telegram_user_id
            text = t("a.appointed", kind=appt.kind.label,
                     title=await adm.slot_title(appt.role, appt.unit_id), name=acting.name,
                     range=range_text(appt.starts_at, appt.ends_at))
    except StaleAction:
        raise
    except WorkflowError as exc:  # e.g. an overlapping appointment: say why, start over
        async with transaction(context) as (session, _wf):
            await clear_conversation(session, person.id)
        await reply(update, exc.message, None, edit=True)
        return
    await reply(update, text, None, edit=True)
    await refresh_menu(context, account)  # the role acted for, when it runs from now


@action(*APPOINT_ROLES, callback=True)
async def cancel_appointment(update: Update, context: Context, person: Person, cb) -> None:
    async with transaction(context) as (session, _wf):
        adm = _adm(session, context)
        appt = await adm.cancel_appointment(person, cb.arg(0))
        acting = await session.get(Person, appt.acting_person_id)
        account = acting.telegram_user_id
        text = t("a.appt_cancelled", kind=appt.kind.label,
                 title=await adm.slot_title(appt.role, appt.unit_id), name=acting.name)
    await reply(update, text, None, edit=True)
    await refresh_menu(context, account)


# ----------------------------------------------------------------- /alihkan
async def _run_label(adm: Administration, run) -> tuple[str, str, str]:
    step = adm.wf.sop.step(run.step_no)
    unit = await adm.s.get(Unit, run.unit_id) if run.unit_id else None
    holder = await adm.s.get(Person, run.assignee_id) if run.assignee_id else None
    return (step.activity[:40], f" - {unit.name}" if unit else "",
            holder.name if holder else "-")


@office_command(3, "alihkan", *(REASSIGN_ANY + REASSIGN_COLLECT))
async def reassign_start(update: Update, context: Context, person: Person, _cb) -> None:
    async with transaction(context) as (session, _wf):
        adm = _adm(session, context)
        rows = []
        for run in await adm.reassignable_runs(person):
            activity, unit, name = await _run_label(adm, run)
            what = unit.removeprefix(" - ") if unit else activity  # a bidang says enough
            rows.append([(_label(t("a.run_label", step=run.step_no, activity=what[:40],
                                   unit="", name=name)), callbacks.encode("alh", run.id))])
    if not rows:
        await reply(update, t("a.no_runs"))
        return
    await reply(update, t("a.pick_run"), rows)


@action(*(REASSIGN_ANY + REASSIGN_COLLECT), callback=True)
async def reassign_pick(update: Update, context: Context, person: Person, cb) -> None:
    async with transaction(context) as (session, wf):
        adm = _adm(session, context)
        run = await wf.get_run(cb.arg(0))
        if run.status != StepStatus.OPEN or run.id not in {
                r.id for r in await adm.reassignable_runs(person)}:
            raise StaleAction()
        activity, unit, name = await _run_label(adm, run)
        people = await adm.candidates_for_run(run)  # only who may hold the step; all, paged
        number = cb.arg(1) if cb.action == "alhl" else 0
        text, rows = _people_page(
            t("a.pick_to", step=run.step_no, activity=activity, unit=unit, name=name),
            [(_person_label(p), callbacks.encode("alhp", run.id, p.id)) for p in people],
            number, "alhl", (run.id,))
        if not people:
            text, rows = await adm.no_candidates_text(run), []
    await reply(update, text, rows, edit=True)


@action(*(REASSIGN_ANY + REASSIGN_COLLECT), callback=True)
async def reassign_do(update: Update, context: Context, person: Person, cb) -> None:
    async with transaction(context) as (session, _wf):
        adm = _adm(session, context)
        run = await adm.reassign_run(person, cb.arg(0), cb.arg(1))
        to = await session.get(Person, run.assignee_id)
        text = t("a.reassigned", step=run.step_no, name=to.name)
    await reply(update, text, None, edit=True)


def register(app) -> None:
    app.add_handler(CommandHandler("pegawai", roster))
    app.add_handler(CommandHandler("alihkan", reassign_start))
    for fn, actions in ((menu, ("pgw", "pgxl")), (pick_deactivate, ("pgx", "pgxp")),
                        (pick_successor, ("pgxs",)), (do_deactivate, ("pgxr",)),
                        (pick_slot, ("plhr",)), (acting_page, ("plhl",)),
                        (pick_acting, ("plhp",)),
                        (pick_kind, ("plhk",)), (confirm, ("plhok",)),
                        (cancel_appointment, ("plhx",)), (reassign_pick, ("alh", "alhl")),
                        (reassign_do, ("alhp",))):
        app.add_handler(CallbackQueryHandler(fn, pattern=callbacks.pattern(*actions)))
