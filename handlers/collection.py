"""The Kasubag during steps 4-5: see a bidang's data, send it back with a reason, close
the collection, and finish processing (which opens step 6).

The buttons appear on the /status board (``kasubag_buttons``) for the cycle's
coordinator only; every handler checks again that the presser is the coordinator and
that the step is still where the button says, so an old board or forged data changes
nothing.
"""
from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler

from bot import callbacks, render
from bot.texts import Raw, period_label, t
from bot.workcal import format_wib
from bot.workflow import NotAllowed, StaleAction, Workflow, WorkflowError
from handlers.common import (
    Context, action, clear_conversation, drop_buttons, get_conversation, reply,
    set_conversation, text_route, transaction, typed_reason, typed_text,
)
from handlers.data_entry import evidence_count, show_value
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
        rows.append([(t("b.process_done"), callbacks.encode("proc", proc.id))])
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
    for no, item in enumerate(await wf.cycle_items(cycle.id, unit.id), start=1):
        ind = await wf.s.get(Indicator, item.indicator_id)
        sub = await wf.latest_submission(cycle.id, ind.id)
        count = await evidence_count(wf.s, sub)
        note = t("c.view_note", note=sub.note) if sub is not None and sub.note else ""
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
    app.add_handler(CallbackQueryHandler(ask_close, pattern=callbacks.pattern("cls")))
    app.add_handler(CallbackQueryHandler(confirm_close,
                                         pattern=callbacks.pattern("clsok", "clsno")))
    app.add_handler(CallbackQueryHandler(process_done, pattern=callbacks.pattern("proc")))
