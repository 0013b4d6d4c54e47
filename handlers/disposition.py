"""Steps 1-3: the Kadis starts a cycle (/mulai), the Sekretaris forwards the
disposition, the Kasubag chooses the bidang and the data deadline."""
from __future__ import annotations

from datetime import date

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import callbacks, render
from bot.texts import period_label, t
from bot.core.workcal import format_wib, to_wib
from bot.core.workflow import InvalidInput, NotAllowed, StaleAction
from handlers.common import (
    Context, action, as_person, clear_conversation, download, drop_buttons, file_route,
    office_command, office_names, office_people, remember, reply, services, set_conversation,
    text_route, transaction, typed_text,
)
from models import Person, Unit
from models.enums import CycleKind, Role, StepStatus

KIND_CODES = {1: CycleKind.QUARTERLY, 2: CycleKind.ANNUAL}
MAX_INSTRUCTION = 1000


def period_choices(today: date) -> list[tuple[CycleKind, int, int]]:
    """The periods a Kadis is likely to start: the last finished quarter, the current
    one, and the previous year's annual report."""
    q = (today.month - 1) // 3 + 1
    prev_q, prev_y = (q - 1, today.year) if q > 1 else (4, today.year - 1)
    return [
        (CycleKind.QUARTERLY, prev_y, prev_q),
        (CycleKind.QUARTERLY, today.year, q),
        (CycleKind.ANNUAL, today.year - 1, 0),
    ]


def _start_data(kind: CycleKind, year: int, quarter: int, office_id: int) -> str:
    code = 1 if kind == CycleKind.QUARTERLY else 2
    return callbacks.encode("startk", code, year, quarter, office_id)


@office_command(1, "mulai", Role.KADIS)
async def mulai(update: Update, context: Context, person: Person, _cb) -> None:
    today = to_wib(services(context).clock.now()).date()
    buttons = [[(period_label(k, y, q), _start_data(k, y, q, person.office_id))]
               for k, y, q in period_choices(today)]
    await reply(update, t("d.choose_period"), buttons)


@action(callback=True)
async def choose_period(update: Update, context: Context, person: Person, cb) -> str | None:
    """A period pressed: of the office the button names ("startk"), or, pressed without
    one ("start", the quarterly prompt) by a Kadis of several offices, asked for."""
    office_id = cb.arg(3) if cb.action == "startk" else None
    people = await office_people(context, person, (Role.KADIS,), office_id)
    if not people:
        raise NotAllowed()
    kind = KIND_CODES.get(cb.arg(0))
    year, quarter = cb.arg(1), cb.arg(2)
    if kind is None or not 2000 <= year <= 2100 or (
            kind == CycleKind.QUARTERLY and quarter not in (1, 2, 3, 4)):
        raise StaleAction()
    if len(people) > 1:
        names = await office_names(context, people)
        await reply(update, t("d.pick_office", period=period_label(kind, year, quarter),
                              count=len(people)),
                    [[(render.label(names[p.office_id], 60),
                       callbacks.encode("startk", cb.arg(0), year, quarter, p.office_id))]
                     for p in people])
        return None
    return await as_person(_period_chosen, update, context, people[0], (kind, year, quarter))


async def _period_chosen(update: Update, context: Context, person: Person,
                         period: tuple[CycleKind, int, int]) -> str | None:
    kind, year, quarter = period
    async with transaction(context) as (session, wf):
        exists = await wf.find_cycle(person.office_id, kind, year, quarter)
        if exists is not None:
            raise InvalidInput(t("err.cycle_exists", period=period_label(kind, year, quarter)))
        await set_conversation(session, person.id, "mulai", "instruction",
                               {"kind": kind.value, "year": year, "quarter": quarter})
    await drop_buttons(update)
    await reply(update, t("d.ask_instruction", period=period_label(kind, year, quarter)),
                force_reply=True)
    return None


@text_route("mulai")
async def mulai_text(update: Update, context: Context, person: Person, conv) -> None:
    text = typed_text(update.effective_message.text)
    if conv.state != "instruction":
        await reply(update, t("d.ask_letter"), [[(t("b.no_letter"), callbacks.encode("start", 0, 0, 0))]])
        return
    if not text or len(text) > MAX_INSTRUCTION:
        await reply(update, t("d.instruction_length", limit=MAX_INSTRUCTION), force_reply=True)
        return
    async with transaction(context) as (session, wf):
        data = dict(conv.data, instruction=text)
        await set_conversation(session, person.id, "mulai", "letter", data)
    prompt = await reply(update, t("d.ask_letter"),
                         [[(t("b.no_letter"), callbacks.encode("start", 0, 0, 0))]])
    await remember(context, person, prompt, _letter_ref(person))


def _letter_ref(person: Person) -> str:
    """The "Mulai tanpa lampiran" prompt: gone once the cycle started."""
    return f"mulai:p{person.id}"


@file_route("mulai")
async def mulai_letter(update: Update, context: Context, person: Person, conv) -> None:
    if conv.state != "letter":
        await reply(update, t("d.ask_instruction_first"), force_reply=True)
        return
    from handlers.data_entry import content_ok, type_allowed

    sv = services(context)
    doc = update.effective_message.document
    if doc is not None and not type_allowed(doc.file_name or "", doc.mime_type):
        await reply(update, t("d.ask_letter"), [[(t("b.no_letter"), callbacks.encode("start", 0, 0, 0))]])
        return
    got = await download(update, context, sv.store.max_bytes)
    data, name, mime = got
    if not data or (doc is not None and not content_ok(name, data)):  # empty, or not what it says
        await reply(update, t("d.ask_letter"), [[(t("b.no_letter"), callbacks.encode("start", 0, 0, 0))]])
        return
    await _start_cycle(update, context, person, conv.data, (data, name, mime))


async def _start_cycle(update: Update, context: Context, person: Person, data: dict,
                       letter: tuple[bytes, str, str] | None) -> None:
    sv = services(context)
    async with transaction(context) as (session, wf):
        file_id = None
        if letter is not None:
            stored = await sv.store.put(session, letter[0], letter[1], letter[2])
            file_id = stored.id
        cycle = await wf.start_cycle(person, CycleKind(data["kind"]), data["year"],
                                     data["quarter"], data.get("instruction", ""), file_id)
        await clear_conversation(session, person.id)
        await wf.retire(_letter_ref(person))
        period = wf.period(cycle)
    await reply(update, t("d.started", period=period))


@action(callback=True)
async def letter_skipped(update: Update, context: Context, person: Person, cb) -> str | None:
    """The "start:0:0:0" button: start without an incoming letter (of a Kadis of several
    offices: in the office whose start is waiting for its letter)."""
    from handlers.common import get_conversation

    people = await office_people(context, person, (Role.KADIS,))
    if not people:
        raise NotAllowed()
    async with transaction(context) as (session, wf):
        waiting = [(p, conv) for p in people
                   if (conv := await get_conversation(session, p.id)) is not None
                   and conv.kind == "mulai" and conv.state == "letter"]
    if not waiting:
        raise StaleAction()
    kadis, conv = next(((p, c) for p, c in waiting if p.id == person.id), waiting[0])
    await drop_buttons(update)
    await as_person(_skip_letter, update, context, kadis, conv)
    return None


async def _skip_letter(update: Update, context: Context, person: Person, conv) -> None:
    await _start_cycle(update, context, person, conv.data, None)


async def start_dispatch(update: Update, context: Context) -> None:
    data = update.callback_query.data if update.callback_query else ""
    if data == "start:0:0:0":
        await letter_skipped(update, context)
    else:
        await choose_period(update, context)


# -------------------------------------------------------------- step 2: Sekretaris
@action(Role.SEKRETARIS, Role.KADIS, callback=True)
async def accept_disposition(update: Update, context: Context, person: Person, cb) -> str | None:
    async with transaction(context) as (session, wf):
        run = await wf.get_run(cb.arg(0))
        step = wf.sop.step(run.step_no)
        if step.kind != "dispose" or run.status != StepStatus.OPEN:
            raise StaleAction()
        await wf._require_holder(run, person, step)  # who may hold it, now
        await set_conversation(session, person.id, "dsp_note", "note", {"run": run.id})
    await drop_buttons(update)
    await reply(update, t("d.ask_note"), force_reply=True)
    prompt = await reply(update, t("d.or_without_note"),
                         [[(t("b.forward_now"), callbacks.encode("crdok", run.id))]])
    await remember(context, person, prompt, f"run:{run.id}")  # gone when forwarded
    return None


async def _forward(update: Update, context: Context, person: Person, run_id: int, note: str) -> None:
    async with transaction(context) as (session, wf):
        new = await wf.forward_disposition(person, run_id, note)
        await clear_conversation(session, person.id)
        holder = await session.get(Person, new.assignee_id)
    await reply(update, t("d.forwarded", name=holder.name, due=format_wib(new.due_at)))


@text_route("dsp_note")
async def disposition_note(update: Update, context: Context, person: Person, conv) -> None:
    note = typed_text(update.effective_message.text)
    if len(note) > MAX_INSTRUCTION:
        await reply(update, t("d.instruction_length", limit=MAX_INSTRUCTION), force_reply=True)
        return
    await _forward(update, context, person, conv.data["run"], note)


# ------------------------------------------------------------- step 3: Kasubag
async def coordination_card(wf, run, data: dict) -> tuple[str, list]:
    """The Kasubag's card: every bidang with its indicators, paged (``crdp``)."""
    session = wf.s
    cycle = await wf.get_cycle(run.cycle_id)
    selected = {int(k): v for k, v in data["units"].items()}
    head = t("d.coord_head", period=wf.period(cycle), due=format_wib(run.due_at))
    items: list[str] = []
    owner: list[int] = []  # the bidang of each line
    toggles = []
    inds, targets = await wf.indicators_with_targets(
        [i for ids in selected.values() for i in ids], cycle)
    for unit_id, ids in sorted(selected.items()):
        unit = await session.get(Unit, unit_id)
        chosen = unit_id not in data.get("off", [])
        mark = "\u2611\ufe0f" if chosen else "\u2b1c"
        items.append(t("d.coord_unit" if chosen else "d.coord_unit_off", mark=mark,
                       unit=unit.name, count=len(ids)))
        owner.append(unit_id)
        if chosen:
            for ind_id in ids:
                ind = inds[ind_id]
                items.append(t("d.coord_item", name=ind.name, uom=ind.unit_of_measure or "-",
                               target=wf.target_text(ind, targets.get(ind_id))))
                owner.append(unit_id)
        toggles.append((unit_id, render.label(f"{mark} {unit.name}")))
    days = data.get("days", 5)
    collect = wf.sop.first_of_kind("collect")
    foot = t("d.coord_deadline", days=days,
             due=format_wib(collect.time.due(wf.sv.calendar, wf.now, days)))
    pg = render.page(head, items, foot, data.get("page", 0))
    on_page = {owner[i] for i in pg.items}
    buttons = [[(text, callbacks.encode("crdu", run.id, unit_id))]
               for unit_id, text in toggles
               if len(toggles) <= render.PAGE_ITEMS or unit_id in on_page]
    nav = render.pager("crdp", (run.id,), pg)
    if nav:
        buttons.append(nav)
    buttons.append([((f"[{d}]" if d == days else str(d)) + " hari",
                     callbacks.encode("crdd", run.id, d))
                    for d in range(collect.time.minimum, collect.time.maximum + 1)])
    buttons.append([(t("b.send_request"), callbacks.encode("crdok", run.id))])
    return pg.text, buttons


async def _coord_run(wf, person: Person, run_id: int):
    run = await wf.get_run(run_id)
    step = wf.sop.step(run.step_no)
    if step.kind != "coordinate" or run.status != StepStatus.OPEN:
        raise StaleAction()
    await wf._require_holder(run, person, step)  # who may hold it, now
    return run


@action(Role.KASUBAG, callback=True)
async def coordinate(update: Update, context: Context, person: Person, cb) -> str | None:
    async with transaction(context) as (session, wf):
        run = await _coord_run(wf, person, cb.arg(0))
        cycle = await wf.get_cycle(run.cycle_id)
        default = await wf.default_selection(cycle)
        data = {"run": run.id, "units": {str(k): v for k, v in default.items()}, "off": [],
                "days": wf.sop.first_of_kind("collect").time.maximum}
        await set_conversation(session, person.id, "coord", "choose", data)
        text, buttons = await coordination_card(wf, run, data)
    await reply(update, text, buttons)
    return None


@action(Role.KASUBAG, callback=True)
async def coordinate_toggle(update: Update, context: Context, person: Person, cb) -> str | None:
    async with transaction(context) as (session, wf):
        run = await _coord_run(wf, person, cb.arg(0))
        from handlers.common import get_conversation

        conv = await get_conversation(session, person.id)
        if conv is None or conv.kind != "coord" or conv.data.get("run") != run.id:
            raise StaleAction()
        data = dict(conv.data)
        if cb.action == "crdp":
            data["page"] = cb.arg(1)
        elif cb.action == "crdu":
            unit_id = cb.arg(1)
            if str(unit_id) not in data["units"]:
                raise StaleAction()
            off = set(data.get("off", []))
            off.symmetric_difference_update({unit_id})
            data["off"] = sorted(off)
        else:  # "crdd"
            days = cb.arg(1)
            collect = wf.sop.first_of_kind("collect")
            if not collect.time.minimum <= days <= collect.time.maximum:
                raise InvalidInput(t("err.deadline_range", minimum=collect.time.minimum,
                                     maximum=collect.time.maximum))
            data["days"] = days
        await set_conversation(session, person.id, "coord", "choose", data)
        text, buttons = await coordination_card(wf, run, data)
    await reply(update, text, buttons, edit=True)
    return None


async def coordinate_send(update: Update, context: Context, person: Person, run_id: int) -> None:
    async with transaction(context) as (session, wf):
        from handlers.common import get_conversation

        conv = await get_conversation(session, person.id)
        run = await _coord_run(wf, person, run_id)
        if conv is None or conv.kind != "coord" or conv.data.get("run") != run.id:
            raise StaleAction()
        off = set(conv.data.get("off", []))
        selection = {int(k): v for k, v in conv.data["units"].items() if int(k) not in off}
        if not selection:
            raise InvalidInput(t("d.choose_one_unit"))
        runs = await wf.open_collection(person, run.id, selection, conv.data.get("days"))
        await clear_conversation(session, person.id)
        names = [(await session.get(Unit, r.unit_id)).name for r in runs]
    await drop_buttons(update)
    await reply(update, t("d.request_sent", count=len(runs), units=", ".join(names)))


@action(Role.KASUBAG, Role.SEKRETARIS, Role.KADIS, callback=True)
async def confirm_dispatch(update: Update, context: Context, person: Person, cb) -> str | None:
    """"crdok:<run>": forward a disposition without a note, or send the data request."""
    async with transaction(context) as (session, wf):
        run = await wf.get_run(cb.arg(0))
        kind = wf.sop.step(run.step_no).kind
    if kind == "dispose":
        await _forward(update, context, person, run.id, "")  # checks the holder first
        await drop_buttons(update)
    elif kind == "coordinate":
        await coordinate_send(update, context, person, run.id)
    else:
        raise StaleAction()
    return None


def register(app) -> None:
    app.add_handler(CommandHandler("mulai", mulai))
    app.add_handler(CallbackQueryHandler(start_dispatch,
                                         pattern=callbacks.pattern("start", "startk")))
    app.add_handler(CallbackQueryHandler(accept_disposition, pattern=callbacks.pattern("dsp")))
    app.add_handler(CallbackQueryHandler(coordinate, pattern=callbacks.pattern("crd")))
    app.add_handler(CallbackQueryHandler(coordinate_toggle,
                                         pattern=callbacks.pattern("crdu", "crdd", "crdp")))
    app.add_handler(CallbackQueryHandler(confirm_dispatch, pattern=callbacks.pattern("crdok")))
