"""/tugas: my open tasks; /status: a cycle's board; the "task" button."""
from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import callbacks, render
from bot.texts import Raw, duration_text, period_label, t
from bot.core.sop import StepKind, step_buttons
from bot.core.workcal import format_wib, use_office_zone
from bot.core.workflow import NotAllowed
from handlers.common import Context, action, remember, reply, services, transaction
from models import Cycle, Person, StepRun, Unit
from models.enums import CycleStatus, Role, StepStatus

BOARD_ROLES = (Role.KADIS, Role.SEKRETARIS, Role.KASUBAG, Role.ADMIN)
STATUS_MARK = {StepStatus.DONE: "✅", StepStatus.OPEN: "⏳", StepStatus.RETURNED: "↩️",
               StepStatus.SKIPPED: "⛔", StepStatus.CANCELLED: "✖️"}


def late_text(sv, due) -> str:
    """How late a step is, in its office's working time (``sv``: the office's services,
    ``wf.sv``)."""
    now = sv.clock.now()
    if due is None or now <= due:
        return ""
    minutes = sv.calendar.working_minutes_between(due, now)
    if minutes <= 0:
        return ""
    return t("s.late", duration=duration_text(minutes, sv.day_minutes))


@action()
async def my_tasks(update: Update, context: Context, person: Person, _cb) -> None:
    """The open tasks of the account: of each office it is bound in, under the office's
    name when there are several (``bot.core.onboarding.people_of_account``)."""
    from bot.core.onboarding import people_of_account
    from bot.core.workflow import Workflow

    groups: list[tuple[str, list[str]]] = []
    buttons = []
    async with transaction(context) as (session, wf):
        people = [p for p in await people_of_account(session, person.telegram_user_id)
                  if p.active] if person.telegram_user_id else [person]
        for p in people or [person]:
            pwf = wf if p.office_id == wf.office_id else await Workflow(
                session, services(context), p.office_id).ready()
            use_office_zone(pwf.sv.calendar.tz)  # each office's times in its own zone
            lines = await _task_lines(pwf, p, buttons)
            if lines:
                office = await pwf.office()
                groups.append((office.name, lines))
    count = sum(len(lines) for _, lines in groups)
    if not count:
        await reply(update, t("s.no_tasks"))
        return
    if len(groups) == 1:
        body = "\n\n".join(groups[0][1])
    else:
        body = "\n\n".join(t("s.tasks_office", office=name) + "\n\n" + "\n\n".join(lines)
                             for name, lines in groups)
    await reply(update, t("s.tasks_head", count=count) + "\n\n" + body, buttons)


async def _task_lines(wf, person: Person, buttons: list) -> list[str]:
    """One person's open tasks in their office (``wf`` acts for it); their buttons are
    appended to ``buttons``."""
    session = wf.s
    lines = []
    for run in await wf.open_runs_for(person):
        step = wf.sop.step(run.step_no)
        cycle = await session.get(Cycle, run.cycle_id)
        unit = await session.get(Unit, run.unit_id) if run.unit_id else None
        lines.append(t("s.task_line", step=step.number, activity=step.activity,
                       period=period_label(cycle.kind, cycle.year, cycle.quarter),
                       unit=f" - {unit.name}" if unit else "",
                       due=format_wib(run.due_at), late=late_text(wf.sv, run.due_at)))
        buttons.append([(t("s.open_task", step=step.number),
                         callbacks.encode("task", run.id))])
    # indicators handed to a staf by their Kabid
    if person.role == Role.STAF:
        for run in await wf.handed_runs(person):
            lines.append(t("s.assigned_line", due=format_wib(run.due_at),
                           late=late_text(wf.sv, run.due_at)))
            buttons += step_buttons(StepKind.COLLECT, run.id)
    return lines


@action(callback=True)
async def open_task(update: Update, context: Context, person: Person, cb) -> str | None:
    async with transaction(context) as (session, wf):
        run = await wf.get_run(cb.arg(0))
        if run.assignee_id != person.id:
            raise NotAllowed(t("err.not_assignee"))
        step = wf.sop.step(run.step_no)
        cycle = await session.get(Cycle, run.cycle_id)
        if run.status != StepStatus.OPEN:
            return t("err.stale_button")
        buttons = await wf.task_buttons(run)
        extra, ref = "", f"run:{run.id}"  # its buttons go when the step is done
        if step.kind == "deliver":  # replaces the earlier delivery lists
            extra, buttons = await delivery_card(wf, run)
            ref = f"run:{run.id}:list"
            await wf.retire(ref)
    card = await reply(update, t("n.step_opened", step=step.number, activity=step.activity,
                                 period=period_label(cycle.kind, cycle.year, cycle.quarter),
                                 due=format_wib(run.due_at)) + extra, buttons)
    if buttons:
        await remember(context, person, card, ref)
    return None


async def delivery_card(wf, run) -> tuple[str, list]:
    """The delivery step: one line and one button per agency."""
    from models.enums import DeliveryStatus

    lines, buttons = [], []
    for d in await wf.deliveries(run.cycle_id):
        lines.append(t("s.delivery_line", agency=d.agency_name,
                       status=t(f"s.delivery_{d.status.value}")))
        if d.status == DeliveryStatus.PENDING:
            buttons.append([(render.button_text("b.deliver_to", agency=d.agency_name),
                             callbacks.encode("dlv", d.id))])
    return "\n\n" + "\n".join(lines), buttons


async def board_text(context: Context, wf, cycle: Cycle) -> str:
    session = wf.s
    runs = await wf.runs_of(cycle.id)
    latest: dict[tuple[int, int | None], StepRun] = {}
    for r in runs:
        latest[(r.step_no, r.unit_id)] = r
    lines = [t("s.board_head", period=period_label(cycle.kind, cycle.year, cycle.quarter),
               status=t(f"s.cycle_{cycle.status.value}"))]
    collect = wf.sop.first_of_kind("collect").number
    for step in wf.sop.steps:
        step_runs = [r for (n, _), r in latest.items() if n == step.number]
        if not step_runs:
            mark = "▫️"
        elif any(r.status == StepStatus.OPEN for r in step_runs):
            mark = STATUS_MARK[StepStatus.OPEN]
        else:
            mark = STATUS_MARK[StepStatus.DONE]
        holder = ""
        open_runs = [r for r in step_runs if r.status == StepStatus.OPEN]
        if open_runs and step.number != collect:
            p = await session.get(Person, open_runs[0].assignee_id)
            holder = t("s.board_holder", name=p.name, due=format_wib(open_runs[0].due_at),
                       late=late_text(wf.sv, open_runs[0].due_at))
        lines.append(t("s.board_step", mark=mark, step=step.number,
                       activity=render.clip(step.activity, 70), holder=Raw(holder)))
        if step.number == collect and step_runs:
            for r in sorted(step_runs, key=lambda r: r.unit_id or 0):
                unit = await session.get(Unit, r.unit_id)
                items = await wf.cycle_items(cycle.id, r.unit_id)
                subs = await wf.latest_submissions(cycle.id, [i.indicator_id for i in items])
                answered = sum(sub is not None for sub in subs.values())
                state = t(f"s.unit_{r.status.value}", answered=answered, total=len(items),
                          round=r.round)
                late = late_text(wf.sv, r.due_at) if r.status == StepStatus.OPEN else ""
                lines.append(t("s.board_unit", unit=unit.name, state=Raw(state), late=Raw(late)))
        if step.kind == "deliver" and step_runs:  # each agency's receipt: its own time
            for d in await wf.deliveries(cycle.id):
                lines.append(t("s.delivery_line", agency=d.agency_name,
                               status=t(f"s.delivery_{d.status.value}")))
    return "\n".join(lines)


@action()
async def status(update: Update, context: Context, person: Person, _cb) -> None:
    """The boards of the account's cycles: of every office where it holds a board role
    (its own or as Plh./Plt.); an account bound in several offices sees each board under
    its office's name."""
    from bot.core.onboarding import office_heading
    from bot.core.workflow import Workflow
    from handlers.common import office_people

    people = await office_people(context, person, BOARD_ROLES)
    if not people:
        raise NotAllowed()
    boards = []
    async with transaction(context) as (session, wf):
        for p in people:
            pwf = wf if p.office_id == wf.office_id else await Workflow(
                session, services(context), p.office_id).ready()
            use_office_zone(pwf.sv.calendar.tz)  # each office's times in its own zone
            heading = await office_heading(session, p)
            boards += await _boards(context, pwf, p, heading)
    for p, cycle_id, text, buttons in boards:
        board = await reply(update, text, buttons)
        if buttons:
            await remember(context, p, board, board_ref(cycle_id))


async def _boards(context: Context, wf, person: Person, heading: str) -> list:
    """One office's boards for ``person`` (``wf`` acts for their office), each text under
    ``heading`` (the office's name, or "" for an account of one office)."""
    from handlers.collection import kasubag_buttons

    cycles = await wf.active_cycles(person.office_id)
    if person.role == Role.ADMIN:  # the admin sees every cycle's board, newest first
        cycles = await wf.recent_cycles(person.office_id, 12)
    if not cycles:
        cycles = await wf.recent_cycles(person.office_id, 1)
    if not cycles:
        text = t("s.no_cycle")
        return [(person, None, f"{heading}\n{text}" if heading else text, [])]
    boards = []
    for cycle in cycles:
        text = await board_text(context, wf, cycle)
        buttons = await kasubag_buttons(wf, cycle, person) \
            if cycle.status == CycleStatus.ACTIVE else []
        if buttons:  # a new board replaces the earlier ones
            await wf.retire(board_ref(cycle.id))
        boards.append((person, cycle.id, f"{heading}\n{text}" if heading else text,
                       buttons))
    return boards


def board_ref(cycle_id: int) -> str:
    """The Kasubag's /status board with its buttons (``Workflow.retire``)."""
    return f"col:{cycle_id}:board"


def register(app) -> None:
    app.add_handler(CommandHandler("tugas", my_tasks))
    app.add_handler(CommandHandler("status", status))
    app.add_handler(CallbackQueryHandler(open_task, pattern=callbacks.pattern("task")))


