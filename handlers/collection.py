"""The Kasubag during steps 4-5: see a bidang's data, send it back with a reason, close
the collection, and finish processing (which opens step 6).

The buttons appear on the /status board (``kasubag_buttons``) for the cycle's
coordinator only; every handler checks again that the presser is the coordinator and
that the step is still where the button says, so an old board or forged data changes
nothing.
"""
from __future__ import annotations

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler

from bot import callbacks, render
from bot.core.entry_rules import analysis_of_sub
from bot.texts import Raw, period_label, t
from bot.core.sop import StepKind, step_buttons
from bot.core.workcal import format_wib
from bot.core.workflow import NotAllowed, StaleAction, Workflow, WorkflowError
from handlers.common import (
    Context, action, clear_conversation, drop_buttons, get_conversation, reply,
    set_conversation, text_route, transaction, typed_reason, typed_text,
)
from bot.core.data_entry import evidence_counts
from handlers.data_entry import show_value
from models import Cycle, Indicator, Person, StepRun, Unit
from models.enums import CycleStatus, Role, StepStatus

MAX_REASON = 1000
LABEL = 40


def _short(name: str) -> str:
    return render.label(name, LABEL)


async def _phase(wf: Workflow, cycle: Cycle) -> tuple[list[StepRun], StepRun | None]:
    """The latest step-4 run of each bidang and the latest step-5 run (if any)."""
    collect = wf.sop.first_of_kind("collect")
    process = wf.sop.next_step(collect.number)
    runs = await wf._latest_runs(cycle.id, collect.number)
    procs = await wf._latest_runs(cycle.id, process.number)
    return runs, (procs[-1] if procs else None)


async def _is_coordinator(wf: Workflow, cycle: Cycle, person: Person) -> bool:
    coordinator = await wf._coordinator_of(cycle)
    return coordinator is not None and coordinator.id == person.id and person.active


async def _require_coordinator(wf: Workflow, cycle: Cycle, person: Person) -> None:
    if not await _is_coordinator(wf, cycle, person):
        raise NotAllowed()


async def kasubag_buttons(wf: Workflow, cycle: Cycle,
                          person: Person) -> list[list[tuple[str, str]]]:
    """The coordinator's buttons on the /status board while steps 4-5 are under way."""
    if cycle.status != CycleStatus.ACTIVE or not await _is_coordinator(wf, cycle, person):
        return []
    runs, proc = await _phase(wf, cycle)
    if not runs or (proc is not None and proc.status != StepStatus.OPEN):
        return []
    rows: list[list[tuple[str, str]]] = []
    for run in sorted(runs, key=lambda r: r.unit_id or 0):
        unit = await wf.s.get(Unit, run.unit_id)
        name = _short(unit.name)
        view = (_plain(t("c.b_view", unit=name)), callbacks.encode("eview", cycle.id, unit.id))
        if run.status == StepStatus.DONE:
            rows.append([view])
            rows.append([(_plain(t("c.b_return", unit=name)),
                          callbacks.encode("rtn", cycle.id, unit.id))])
        elif run.status == StepStatus.OPEN:
            rows.append([view])
    if any(r.status == StepStatus.OPEN for r in runs):
        rows.append([(t("c.b_close"), callbacks.encode("cls", cycle.id))])
    if proc is not None and proc.status == StepStatus.OPEN:
        rows += step_buttons(StepKind.PROCESS, proc.id)
    return rows


def _plain(text: str) -> str:
    """Button labels are plain text: undo the escaping of ``t`` (``bot.render``)."""
    return render.label(render.plain(text))


# ----------------------------------------------------------------- view a bidang's data
async def unit_view(wf: Workflow, cycle: Cycle, unit: Unit, number: int = 0
                    ) -> tuple[str, list]:
    """A bidang's answers for the Kasubag, paged (``evpg``)."""
    run = await wf.collect_run_for(cycle.id, unit.id)
    if run is None:
        raise StaleAction()
    status = t(f"c.status_{run.status.value}", round=run.round) \
        if run.status.value in ("open", "done", "skipped", "returned") else run.status.value
    head = t("c.view_head", unit=unit.name,
             period=period_label(cycle.kind, cycle.year, cycle.quarter), status=status)
    lines = []
    kabid_id = run.assignee_id
    items = await wf.cycle_items(cycle.id, unit.id)
    ids = [i.indicator_id for i in items]
    inds = await wf.indicators(ids)
    latest = await wf.latest_submissions(cycle.id, ids)
    counts = await evidence_counts(wf.s, latest.values())
    for no, item in enumerate(items, start=1):
        ind = inds[item.indicator_id]
        sub = latest[ind.id]
        count = counts[sub.id] if sub is not None else 0
        note = t("c.view_note", note=sub.note) if sub is not None and sub.note else ""
        for name, text in analysis_of_sub(sub).items():  # the analysis of the capaian
            note += t("c.view_why", label=t(f"e.why_label_{name}"), text=text)
        who = ""
        if sub is not None and sub.person_id != kabid_id:
            entered = await wf.s.get(Person, sub.person_id)
            who = t("c.view_who", name=entered.name) if entered else ""
        lines.append(t("c.view_line", no=no, name=ind.name, value=show_value(ind, sub),
                       evidence=Raw(t("e.summary_evidence", count=count) if count else ""),
                       note=Raw(note), who=Raw(who)))
    pg = render.page(head, lines, (), number)
    _, proc = await _phase(wf, cycle)
    buttons = []
    nav = render.pager("evpg", (cycle.id, unit.id), pg)
    if nav:
        buttons.append(nav)
    if run.status == StepStatus.DONE and (proc is None or proc.status == StepStatus.OPEN):
        buttons.append([(t("c.b_return_some"), callbacks.encode("rti", cycle.id, unit.id))])
        buttons.append([(_plain(t("c.b_return", unit=_short(unit.name))),
                         callbacks.encode("rtn", cycle.id, unit.id))])
    return pg.text, buttons


@action(Role.KASUBAG, callback=True)
async def view_unit(update: Update, context: Context, person: Person, cb) -> str | None:
    """"eview:<cycle>:<unit>" opens the view, "evpg:<cycle>:<unit>:<page>" pages it."""
    async with transaction(context) as (session, wf):
        cycle = await wf.get_cycle(cb.arg(0))
        await _require_coordinator(wf, cycle, person)
        unit = await session.get(Unit, cb.arg(1))
        if unit is None or cycle.status != CycleStatus.ACTIVE:
            raise StaleAction()
        number = cb.arg(2) if cb.action == "evpg" else 0
        text, buttons = await unit_view(wf, cycle, unit, number)
    await reply(update, text, buttons, edit=cb.action == "evpg")
    return None


# ----------------------------------------------------------------- return a bidang
async def _returnable(wf: Workflow, cycle: Cycle, unit_id: int) -> StepRun:
    run = await wf.collect_run_for(cycle.id, unit_id)
    _, proc = await _phase(wf, cycle)
    if (run is None or run.status != StepStatus.DONE
            or (proc is not None and proc.status != StepStatus.OPEN)):
        raise StaleAction()
    return run


@action(Role.KASUBAG, callback=True)
async def ask_return(update: Update, context: Context, person: Person, cb) -> str | None:
    async with transaction(context) as (session, wf):
        cycle = await wf.get_cycle(cb.arg(0))
        await _require_coordinator(wf, cycle, person)
        await _returnable(wf, cycle, cb.arg(1))
        unit = await session.get(Unit, cb.arg(1))
        await set_conversation(session, person.id, "rtn_reason", "reason",
                               {"cycle": cycle.id, "unit": unit.id})
    await reply(update, t("c.ask_reason", unit=unit.name), force_reply=True)
    return None


@text_route("rtn_reason")
async def return_reason(update: Update, context: Context, person: Person, conv) -> None:
    reason = await typed_reason(update, MAX_REASON, "c.reason_length")
    if reason is None:
        return
    try:
        async with transaction(context) as (session, wf):
            new = await wf.return_unit(person, conv.data["cycle"], conv.data["unit"], reason)
            await clear_conversation(session, person.id)
            unit = await session.get(Unit, new.unit_id)
            holder = await session.get(Person, new.assignee_id)
    except WorkflowError:
        # the bidang is no longer returnable: leave the conversation, say why
        async with transaction(context) as (session, _wf):
            await clear_conversation(session, person.id)
        raise
    await reply(update, t("c.returned", unit=unit.name, name=holder.name, reason=reason))


# ----------------------------------------------------------------- return single answers
PICK = "rti"
MAX_ITEM_NOTE = 500


async def pick_card(wf: Workflow, cycle: Cycle, unit: Unit, data: dict) -> tuple[str, list]:
    """The bidang's answers to pick from, paged (``rtip``); a picked one shows its note."""
    items = await wf.cycle_items(cycle.id, unit.id)
    notes = data.get("notes") or {}
    lines, labels = [], []
    ids = [i.indicator_id for i in items]
    inds = await wf.indicators(ids)
    latest = await wf.latest_submissions(cycle.id, ids)
    for no, item in enumerate(items, start=1):
        ind = inds[item.indicator_id]
        sub = latest[ind.id]
        note = notes.get(str(item.id))
        mark = "\u2611" if note else "\u2610"
        lines.append(t("c.pick_line", mark=mark, no=no, name=ind.name,
                       value=show_value(ind, sub),
                       note=Raw(t("c.pick_note", note=note) if note else "")))
        labels.append(render.button_text("c.b_pick", mark=mark, no=no, name=ind.name))
    pg = render.page(t("c.pick_head", unit=unit.name), lines,
                     t("c.pick_count", count=len(notes)), data.get("page", 0))
    buttons = [[(labels[i], callbacks.encode("rtis", cycle.id, unit.id, items[i].id))]
               for i in pg.items]
    nav = render.pager("rtip", (cycle.id, unit.id), pg)
    if nav:
        buttons.append(nav)
    if notes:
        buttons.append([(t("c.b_pick_send", count=len(notes)),
                         callbacks.encode("rtiok", cycle.id, unit.id))])
    buttons.append([(t("c.b_pick_cancel"), callbacks.encode("rtix", cycle.id, unit.id))])
    return pg.text, buttons


async def _pick_conversation(session, person: Person, cycle_id: int, unit_id: int):
    conv = await get_conversation(session, person.id)
    if (conv is None or conv.kind != PICK or conv.data.get("cycle") != cycle_id
            or conv.data.get("unit") != unit_id):
        raise StaleAction()
    return conv


async def _remember_card(context: Context, person: Person, message) -> None:
    if message is None:
        return
    async with transaction(context) as (session, _wf):
        conv = await get_conversation(session, person.id)
        if conv is not None and conv.kind == PICK:
            conv.message_id = message.message_id


@action(Role.KASUBAG, callback=True)
async def pick_answers(update: Update, context: Context, person: Person, cb) -> str | None:
    """"rti" opens the picker, "rtip" pages it, "rtis" picks an answer (its note is asked)
    or unpicks it, "rtiok" returns the picked answers, "rtix" cancels."""
    cycle_id, unit_id = cb.arg(0), cb.arg(1)
    edit, force_reply, done = True, False, False
    async with transaction(context) as (session, wf):
        cycle = await wf.get_cycle(cycle_id)
        await _require_coordinator(wf, cycle, person)
        if cb.action != "rtix":
            await _returnable(wf, cycle, unit_id)
        unit = await session.get(Unit, unit_id)
        if cb.action == "rti":
            data = {"cycle": cycle.id, "unit": unit.id, "notes": {}, "page": 0}
            await set_conversation(session, person.id, PICK, "pick", data)
            text, buttons = await pick_card(wf, cycle, unit, data)
            edit = False
        else:
            conv = await _pick_conversation(session, person, cycle_id, unit_id)
            data = dict(conv.data)
            if cb.action == "rtix":
                await clear_conversation(session, person.id)
                text, buttons, done = t("c.pick_cancelled"), None, True
            elif cb.action == "rtiok":
                notes = {int(k): v for k, v in (data.get("notes") or {}).items()}
                new = await wf.return_answers(person, cycle.id, unit.id, notes)
                await clear_conversation(session, person.id)
                holder = await session.get(Person, new.assignee_id)
                text, buttons, done = t("c.answers_returned", count=len(notes),
                                        unit=unit.name, name=holder.name), None, True
            else:
                items = {i.id: i for i in await wf.cycle_items(cycle.id, unit.id)}
                if cb.action == "rtip":
                    data["page"] = cb.arg(2)
                    state = "pick"
                elif cb.arg(2) not in items:
                    raise StaleAction()
                elif str(cb.arg(2)) in (data.get("notes") or {}):  # unpick
                    data["notes"] = {k: v for k, v in data["notes"].items()
                                     if k != str(cb.arg(2))}
                    data.pop("item", None)
                    state = "pick"
                else:  # picked: its note is asked
                    data["item"] = cb.arg(2)
                    state = "note"
                await set_conversation(session, person.id, PICK, state, data)
                if state == "note":
                    item = items[cb.arg(2)]
                    ind = await session.get(Indicator, item.indicator_id)
                    sub = await wf.latest_submission(cycle.id, ind.id)
                    text, buttons = t("c.ask_item_note", name=ind.name,
                                      value=show_value(ind, sub)), None
                    edit, force_reply = False, True
                else:
                    text, buttons = await pick_card(wf, cycle, unit, data)
    if done:
        await drop_buttons(update)
        await reply(update, text)
        return None
    message = await reply(update, text, buttons, edit=edit, force_reply=force_reply)
    if cb.action == "rti":
        await _remember_card(context, person, message)
    return None


@text_route(PICK)
async def pick_note(update: Update, context: Context, person: Person, conv) -> None:
    """The note for the answer just picked; then the picker again, below."""
    if conv.state != "note":
        await reply(update, t("c.pick_use_buttons"))
        return
    note = await typed_reason(update, MAX_ITEM_NOTE, "c.reason_length")
    if note is None:
        return
    async with transaction(context) as (session, wf):
        conv = await _pick_conversation(session, person, conv.data.get("cycle"),
                                        conv.data.get("unit"))
        cycle = await wf.get_cycle(conv.data["cycle"])
        unit = await session.get(Unit, conv.data["unit"])
        data = dict(conv.data)
        item_id = data.pop("item", None)
        if item_id is not None:
            data["notes"] = dict(data.get("notes") or {}, **{str(item_id): note})
        old_card = conv.message_id
        await set_conversation(session, person.id, PICK, "pick", data)
        text, buttons = await pick_card(wf, cycle, unit, data)
    if old_card:  # the earlier picker stays as a record, without buttons
        try:
            await context.bot.edit_message_reply_markup(
                chat_id=update.effective_chat.id, message_id=old_card, reply_markup=None)
        except TelegramError:
            pass
    message = await reply(update, text, buttons)
    await _remember_card(context, person, message)


# ----------------------------------------------------------------- close the collection
async def _open_units(wf: Workflow, cycle: Cycle) -> list[Unit]:
    runs, proc = await _phase(wf, cycle)
    return [await wf.s.get(Unit, r.unit_id) for r in runs if r.status == StepStatus.OPEN]


@action(Role.KASUBAG, callback=True)
async def ask_close(update: Update, context: Context, person: Person, cb) -> str | None:
    async with transaction(context) as (session, wf):
        cycle = await wf.get_cycle(cb.arg(0))
        await _require_coordinator(wf, cycle, person)
        units = await _open_units(wf, cycle)
        if not units or cycle.status != CycleStatus.ACTIVE:
            raise StaleAction()
        await set_conversation(session, person.id, "cls_note", "note", {"cycle": cycle.id})
        period = period_label(cycle.kind, cycle.year, cycle.quarter)
    await reply(update, t("c.close_confirm", period=period,
                          units=", ".join(u.name for u in units)),
                [[(t("c.b_close_yes"), callbacks.encode("clsok", cycle.id)),
                  (t("c.b_close_no"), callbacks.encode("clsno", cycle.id))]])
    return None


async def _close(update: Update, context: Context, person: Person, cycle_id: int,
                 note: str) -> None:
    async with transaction(context) as (session, wf):
        conv = await get_conversation(session, person.id)
        if conv is None or conv.kind != "cls_note" or conv.data.get("cycle") != cycle_id:
            raise StaleAction()
        cycle = await wf.get_cycle(cycle_id)
        units = [u.name for u in await _open_units(wf, cycle)]
        await wf.close_collection(person, cycle_id, note)
        await clear_conversation(session, person.id)
    await reply(update, t("c.closed", units=", ".join(units)))


@action(Role.KASUBAG, callback=True)
async def confirm_close(update: Update, context: Context, person: Person, cb) -> str | None:
    if cb.action == "clsno":
        async with transaction(context) as (session, _wf):
            conv = await get_conversation(session, person.id)
            if conv is None or conv.kind != "cls_note" or conv.data.get("cycle") != cb.arg(0):
                raise StaleAction()
            await clear_conversation(session, person.id)
        await drop_buttons(update)
        await reply(update, t("c.closed_cancelled"))
        return None
    await _close(update, context, person, cb.arg(0), "")
    await drop_buttons(update)
    return None


@text_route("cls_note")
async def close_note(update: Update, context: Context, person: Person, conv) -> None:
    note = typed_text(update.effective_message.text)
    if len(note) > MAX_REASON:
        await reply(update, t("c.close_note_length", limit=MAX_REASON))
        return
    await _close(update, context, person, conv.data.get("cycle"), note)


# ----------------------------------------------------------------- step 5 done
@action(Role.KASUBAG, callback=True)
async def process_done(update: Update, context: Context, person: Person, cb) -> str | None:
    async with transaction(context) as (session, wf):
        new = await wf.complete_process(person, cb.arg(0))
        step = wf.sop.step(new.step_no)
    await drop_buttons(update)
    await reply(update, t("c.processed", step=step.number, activity=step.activity,
                          due=format_wib(new.due_at)))
    return None


def register(app) -> None:
    app.add_handler(CallbackQueryHandler(view_unit, pattern=callbacks.pattern("eview", "evpg")))
    app.add_handler(CallbackQueryHandler(ask_return, pattern=callbacks.pattern("rtn")))
    app.add_handler(CallbackQueryHandler(
        pick_answers, pattern=callbacks.pattern("rti", "rtip", "rtis", "rtiok", "rtix")))
    app.add_handler(CallbackQueryHandler(ask_close, pattern=callbacks.pattern("cls")))
    app.add_handler(CallbackQueryHandler(confirm_close,
                                         pattern=callbacks.pattern("clsok", "clsno")))
    app.add_handler(CallbackQueryHandler(process_done, pattern=callbacks.pattern("proc")))
