"""The workflow engine: moves a cycle of the SOP through its steps.

No Telegram here. Every function takes a database session and the services (clock,
calendar, SOP definition); it checks role, person and state first (a wrong one raises a
``WorkflowError`` before anything is written), then changes state, sets the next step's
due time in working time, writes an audit row and queues the messages it causes. The
caller commits once (``async with session.begin()``), so all of it lands together or
not at all.

Legal moves, in one place (step kinds from the SOP definition file):

    start_cycle          -> step 1 (dispose, kadis) done, step 2 opened
    forward_disposition  dispose open          -> done, next step opened
    open_collection      coordinate open       -> done, one collect run per bidang
    record_answer        collect open (unit)   -> a new submission revision
    submit_unit          collect open (unit)   -> done; process opened when all are in
    return_unit          collect done, process not done -> a new collect run (round+1)
    close_collection     collect runs open     -> skipped, process opened
    complete_process     process open, no collect open -> done, compile opened
    submit_documents     compile open          -> done, review opened
    approve              review/sign open      -> done, next opened
    return_documents     review/sign open      -> returned, compile reopened (round+1)
    assign_number        number open           -> done, archive opened
    archive              archive open          -> done, deliver opened, deliveries made
    send_delivery        deliver open          -> delivery sent; none left to send: done
    record_receipt       deliveries made       -> delivery received; all in: cycle closed

Step 11's own work is sending (its time standard, 10 minutes, is measured and reminded
like any step): the deliver run is done once no delivery is left to send. The receipts
the agencies return take their own time; the cycle stays active until the last one is
in, and ``bot.core.reminders.receipt_sweep`` reminds each agency's contact, never anyone
inside the office.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Iterable, Sequence

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from bot.core import audit
from bot import callbacks
from bot.core.entry_rules import ANALYSIS_FIELDS, missing_analysis
from bot.core.authority import (
    Capacity, acting_for, covering, holding_capacity, may_hold, role_holder, who_may_text,
)
from bot.config import MEASUREMENT_REPORT
from bot.core.errors import (  # noqa: F401 - the engine's errors, imported from here too
    InvalidInput, NotAllowed, NotAssignee, NotFound, StaleAction, WorkflowError, WrongState,
)
from bot.core.outbox import enqueue, retire as outbox_retire
from bot.core.services import Services
from bot.core.sop import STEP_BUTTONS, Step, StepKind, step_buttons
from bot.texts import Raw, period_label, t, unit_name
from bot.core.workcal import format_wib, to_wib
from models import (
    Approval,
    Cycle,
    CycleIndicator,
    Delivery,
    Document,
    Evidence,
    Indicator,
    LetterCounter,
    LetterNumber,
    Office,
    Person,
    StepRun,
    StoredFile,
    ReturnedAnswer,
    Submission,
    Target,
    Unit,
)
from models.enums import (
    ApprovalAction,
    CycleKind,
    CycleStatus,
    DeliveryStatus,
    DocumentStatus,
    Role,
    StepStatus,
    ValueType,
)
from models.session import as_written, core_objects, core_rows, get as loaded_get



@dataclass(frozen=True)
class RunView:
    run: StepRun
    step: Step
    unit: Unit | None
    assignee: Person | None


class Workflow:
    def __init__(self, session: AsyncSession, services: Services,
                 office_id: int | None = None) -> None:
        self.s = session
        # the services of the office this workflow acts for (``bind``); until bound,
        # config.toml's defaults
        self.base = services
        self.sv = services
        self.office_id = services.office_id
        if office_id is not None and office_id != self.office_id:
            view = services.cached_office(office_id)
            if view is not None:
                self._use(view)
            else:
                self._pending = office_id
        # (cycle, indicator) -> its latest submission, as read or written by this
        # instance (submissions are only added, by ``record_answer``)
        self._latest: dict[tuple[int, int], Submission | None] = {}

    # ----------------------------------------------------------------- helpers
    @property
    def now(self) -> datetime:
        return self.sv.clock.now()

    def fmt_due(self, due: datetime | None) -> str:
        return format_wib(due) if due else "-"

    _pending: int | None = None

    @property
    def sop(self):
        return self.sv.sop

    def _use(self, view: Services) -> None:
        from bot.core.workcal import use_office_zone

        self.sv = view
        self.office_id = view.office_id
        self._pending = None
        use_office_zone(view.calendar.tz)

    async def bind(self, office: Office | int) -> Workflow:
        """Act for one office: its settings (numbering, delivery, calendar and time zone,
        reminders, SOP definition) from then on, and nothing of another office: a cycle,
        run or person of another office is refused as not found (a button of another
        office's cycle). Bound already to another office: ``NotFound``."""
        office_id = office if isinstance(office, int) else office.id
        if self.office_id is not None:
            if self.office_id != office_id:
                raise NotFound()
            if self._pending is None:
                return self
        view = self.base.cached_office(office_id)
        if view is None:
            view = await self._office_view(office if isinstance(office, Office) else None,
                                           office_id)
        self._use(view)
        return self

    async def _office_view(self, row: Office | None, office_id: int) -> Services:
        """The office's view when the kept one is stale: its ``settings_version``
        compared (one query of the key: the parsed view kept when unchanged), else the
        row read. Another process's change of the settings is thus seen within
        ``Services.VIEW_TTL`` seconds, at the next update on PostgreSQL (its NOTIFY)."""
        import time

        known = self.base.known_version(office_id) if row is None else None
        if known is not None:
            started = time.monotonic()
            current = (await self.s.execute(select(Office.settings_version).where(
                Office.id == office_id))).scalar()
            if current is None:
                raise NotFound()
            if current == known:
                return self.base.confirm_office(office_id, started)
        started = time.monotonic()
        row = row if row is not None else await self.s.get(Office, office_id)
        if row is None:
            raise NotFound()
        return self.base.for_office(row, read_at=started)

    async def ready(self) -> Workflow:
        """Bind to the office given at construction when its settings were not cached
        (one read of the office row)."""
        if self._pending is not None:
            await self.bind(self._pending)
        return self

    async def _scope(self, office_id: int) -> None:
        """What the workflow reads belongs to its office (binds an unbound one)."""
        if self._pending is not None:
            await self.bind(self._pending)
        if self.office_id != office_id:
            await self.bind(office_id)

    async def office(self) -> Office:
        """The office this workflow acts for. Unbound (the operator's CLI on an
        installation of one office): the only office; with several, the caller must
        say which (``bind``)."""
        if self._pending is not None:
            await self.bind(self._pending)
        if self.office_id is not None:
            office = await self.s.get(Office, self.office_id)
            if office is None:
                raise NotFound()
            return office
        offices = (await self.s.execute(select(Office).order_by(Office.id).limit(2))).scalars().all()
        if not offices:
            raise NotFound("Kantor belum disiapkan. Jalankan 'sopbot setup import'.")
        if len(offices) > 1:
            raise InvalidInput(t("err.which_office"))
        await self.bind(offices[0])
        return offices[0]

    async def _audit(self, action: str, actor: Person | None, cycle: Cycle | None,
                     **payload: object) -> None:
        await audit.record(self.s, action, actor_id=actor.id if actor else None,
                           cycle_id=cycle.id if cycle else None, at=self.now, **payload)

    async def _notify(self, person: Person | None, kind: str, text: str,
                      buttons: Sequence[Sequence[tuple[str, str]]] | None = None,
                      files: Sequence[dict] | None = None, ref: str = "",
                      after: Sequence[dict] | None = None) -> None:
        if person is None:
            return
        from bot.core.onboarding import office_heading

        head = await office_heading(self.s, person)  # an account in several offices
        await enqueue(self.s, person, kind, f"{head}\n{text}" if head else text, buttons,
                      at=self.now, files=files, ref=ref, after=after)

    async def retire(self, ref: str) -> None:
        """The messages whose buttons act on ``ref`` no longer apply: their keyboards go
        (``bot.core.outbox.retire``)."""
        await outbox_retire(self.s, ref, at=self.now)

    def _check_active(self, actor: Person) -> None:
        if not actor.active:
            raise NotAllowed(t("err.inactive"))
        if self.office_id is not None and actor.office_id != self.office_id:
            raise NotAllowed()  # a person of another office

    async def get_cycle(self, cycle_id: int) -> Cycle:
        cycle = await loaded_get(self.s, Cycle, cycle_id)
        if cycle is None:
            raise NotFound()
        await self._scope(cycle.office_id)
        return cycle

    async def get_run(self, run_id: int, *, lock: bool = False) -> StepRun:
        if lock:
            run = (await self.s.execute(select(StepRun).where(StepRun.id == run_id)
                                        .with_for_update())).scalar_one_or_none()
        else:  # a run the session has already read is not read again
            run = await loaded_get(self.s, StepRun, run_id)
        if run is None:
            raise NotFound()
        await self.get_cycle(run.cycle_id)  # of this workflow's office
        return run

    def period(self, cycle: Cycle) -> str:
        return period_label(cycle.kind, cycle.year, cycle.quarter)

    async def holder_for(self, office_id: int, step: Step, unit_id: int | None = None) -> Person:
        """Who holds a step: the person of its role (of the bidang for a Kabid), or the
        acting official (Plh./Plt.) whose appointment covers now."""
        person = await role_holder(self.s, office_id, step.role, unit_id, self.now,
                                   secretariat=step.unit == "sekretariat")
        if person is None:
            where = ""
            if step.role == Role.KABID:
                unit = await self.s.get(Unit, unit_id) if unit_id else None
                where = f" untuk {unit.name}" if unit else ""
            elif step.role == Role.STAF and step.unit == "sekretariat":
                where = " di Sekretariat"
            raise InvalidInput(t("err.no_person", role=step.role.value, where=where))
        return person

    async def _require_holder(self, run: StepRun, actor: Person, step: Step) -> Capacity:
        """The actor may act on the run now (``bot.core.authority``, at the clock's time): its
        holder, if they still may hold the step (a Plh. whose range ended may not); or a
        person who may hold it, taking over a run whose named holder no longer may (the
        Kadis back after the Plh.'s range, before the minute job moved the run back).
        Returns the capacity in which the actor acts."""
        self._check_active(actor)
        cap = await holding_capacity(self.s, actor, step, run.unit_id, self.now)
        if run.assignee_id == actor.id:
            if cap is None:
                raise NotAllowed(t("au.err_lapsed", step=step.number,
                                   who=await who_may_text(self.s, step, run.unit_id)))
            return cap
        if cap is None:
            raise NotAllowed()
        holder = await self.s.get(Person, run.assignee_id) if run.assignee_id else None
        if await holding_capacity(self.s, holder, step, run.unit_id, self.now) is not None:
            raise NotAssignee()
        cycle = await self.get_cycle(run.cycle_id)
        run.assignee_id = actor.id
        await self.s.flush()
        await self._audit("step.reassign", actor, cycle, run=run.id, step=step.number,
                          unit=run.unit_id, to=actor.id, reason="takeover", note="",
                          **{"from": holder.id if holder else None})
        return cap

    def _require_open(self, run: StepRun, *kinds: str) -> Step:
        step = self.sop.step(run.step_no)
        if step.kind not in kinds:
            raise StaleAction()
        if run.status != StepStatus.OPEN:
            raise StaleAction()
        return step

    async def _open_run(self, cycle: Cycle, step: Step, *, unit_id: int | None = None,
                        round_: int = 1, due: datetime | None = None,
                        assignee: Person | None = None) -> StepRun:
        if assignee is None:
            assignee = await self.holder_for(cycle.office_id, step, unit_id)
        run = StepRun(
            cycle_id=cycle.id, step_no=step.number, unit_id=unit_id, role=step.role,
            assignee_id=assignee.id, status=StepStatus.OPEN, round=round_,
            started_at=self.now, due_at=due or step.time.due(self.sv.calendar, self.now),
        )
        self.s.add(run)
        await self.s.flush()
        await self._audit("step.open", None, cycle, step=step.number, run=run.id,
                          unit=unit_id, assignee=assignee.id, due=run.due_at.isoformat())
        return run

    async def _complete(self, run: StepRun, actor: Person, note: str = "",
                        status: StepStatus = StepStatus.DONE) -> None:
        run.status = status
        run.completed_at = self.now
        run.completed_by_id = actor.id
        if note:
            run.note = note
        await self.s.flush()
        await self.retire(f"run:{run.id}")  # its cards, its staf's, the staf's "selesai"
        await self._tell_absent(run, actor)  # done by a Plh./Plt.: the official is told

    async def _notify_step(self, cycle: Cycle, run: StepRun, buttons=None) -> None:
        step = self.sop.step(run.step_no)
        person = await self.s.get(Person, run.assignee_id)
        await self._notify(
            person, f"step{step.number}",
            t("n.step_opened", step=step.number, activity=step.activity,
              period=self.period(cycle), due=self.fmt_due(run.due_at)),
            buttons, ref=f"run:{run.id}",
        )

    # ----------------------------------------------------------- steps 1 - 2
    async def start_cycle(self, actor: Person, kind: CycleKind, year: int, quarter: int,
                          instruction: str = "", letter_file_id: int | None = None) -> Cycle:
        self._check_active(actor)
        first = self.sop.step(1)
        if await holding_capacity(self.s, actor, first, None, self.now) is None:
            raise NotAllowed()
        if kind == CycleKind.QUARTERLY and quarter not in (1, 2, 3, 4):
            raise InvalidInput("Triwulan harus 1 sampai 4.")
        if kind == CycleKind.ANNUAL:
            quarter = 0
        if not 2000 <= year <= 2100:
            raise InvalidInput("Tahun tidak sah.")
        existing = (
            await self.s.execute(
                select(Cycle).where(Cycle.office_id == actor.office_id, Cycle.kind == kind,
                                    Cycle.year == year, Cycle.quarter == quarter)
            )
        ).scalar_one_or_none()
        if existing is not None:
            raise WrongState(t("err.cycle_exists", period=period_label(kind, year, quarter)))
        cycle = Cycle(office_id=actor.office_id, kind=kind, year=year, quarter=quarter,
                      document_type=self.sop.document_title,
                      instruction=instruction.strip(), letter_file_id=letter_file_id,
                      started_by_id=actor.id, started_at=self.now, status=CycleStatus.ACTIVE)
        self.s.add(cycle)
        await self.s.flush()
        run1 = StepRun(cycle_id=cycle.id, step_no=1, role=first.role, assignee_id=actor.id,
                       status=StepStatus.DONE, started_at=self.now,
                       due_at=first.time.due(self.sv.calendar, self.now),
                       completed_at=self.now, completed_by_id=actor.id, note=cycle.instruction)
        self.s.add(run1)
        await self.s.flush()
        await self._audit("cycle.start", actor, cycle, kind=kind.value, year=year,
                          quarter=quarter, instruction=cycle.instruction)
        # the quarterly prompt's "start" button (bot/core/reminders.py)
        await self.retire(f"start:{1 if kind == CycleKind.QUARTERLY else 2}:{year}:{quarter}")
        nxt = self.sop.step(2)
        run2 = await self._open_run(cycle, nxt)
        holder = await self.s.get(Person, run2.assignee_id)
        await self._notify(
            holder, "disposition",
            t("n.disposition", sender=actor.name, document=cycle.document_type,
              period=self.period(cycle), instruction=cycle.instruction or "-",
              due=self.fmt_due(run2.due_at), step=nxt.number, activity=nxt.activity),
            step_buttons(nxt.kind, run2.id),
            files=[{"file_id": letter_file_id, "kind": "document"}] if letter_file_id else None,
            ref=f"run:{run2.id}",
        )
        return cycle

    async def forward_disposition(self, actor: Person, run_id: int, note: str = "") -> StepRun:
        run = await self.get_run(run_id, lock=True)
        step = self._require_open(run, "dispose")
        await self._require_holder(run, actor, step)
        cycle = await self.get_cycle(run.cycle_id)
        await self._complete(run, actor, note.strip())
        await self._audit("disposition.forward", actor, cycle, step=step.number, run=run.id,
                          note=note.strip())
        nxt = self.sop.next_step(step.number)
        new = await self._open_run(cycle, nxt)
        holder = await self.s.get(Person, new.assignee_id)
        if nxt.kind == "dispose":
            text = t("n.disposition", sender=actor.name, document=cycle.document_type,
                     period=self.period(cycle), instruction=note or cycle.instruction or "-",
                     due=self.fmt_due(new.due_at), step=nxt.number, activity=nxt.activity)
            buttons = step_buttons(nxt.kind, new.id)
        else:
            text = t("n.coordinate", sender=actor.name, document=cycle.document_type,
                     period=self.period(cycle), note=note or "-",
                     instruction=cycle.instruction or "-", due=self.fmt_due(new.due_at),
                     step=nxt.number, activity=nxt.activity)
            buttons = step_buttons(nxt.kind, new.id)
        files = None
        if cycle.letter_file_id:
            files = [{"file_id": cycle.letter_file_id, "kind": "document"}]
        await self._notify(holder, "disposition", text, buttons, files=files,
                           ref=f"run:{new.id}")
        return new

    # ------------------------------------------------------------- step 3
    async def target_for(self, indicator: Indicator, cycle: Cycle) -> Target | None:
        period = 0 if cycle.kind == CycleKind.ANNUAL else cycle.quarter
        return (
            await self.s.execute(
                select(Target).where(Target.indicator_id == indicator.id,
                                     Target.year == cycle.year, Target.period == period)
            )
        ).scalar_one_or_none()

    async def indicators_with_targets(self, ids: Sequence[int], cycle: Cycle
                                      ) -> tuple[dict[int, Indicator], dict[int, Target]]:
        """Indicators by id and their targets for the cycle's period, in two queries
        (the coordination card of a large office lists hundreds)."""
        if not ids:
            return {}, {}
        period = 0 if cycle.kind == CycleKind.ANNUAL else cycle.quarter
        inds = await self.indicators(ids)
        targets = {t.indicator_id: t for t in (await self.s.execute(
            select(Target).where(Target.indicator_id.in_(ids), Target.year == cycle.year,
                                 Target.period == period))).scalars()}
        return inds, targets

    async def default_selection(self, cycle: Cycle) -> dict[int, list[int]]:
        """Every bidang that has active indicators with a target for the period."""
        rows = (
            await self.s.execute(
                select(Indicator)
                .where(Indicator.office_id == cycle.office_id, Indicator.active.is_(True))
                .order_by(Indicator.unit_id, Indicator.sort_order, Indicator.id)
            )
        ).scalars().all()
        selection: dict[int, list[int]] = {}
        _, targets = await self.indicators_with_targets([ind.id for ind in rows], cycle)
        for ind in rows:
            target = targets.get(ind.id)
            if target is not None and (target.value is not None or target.value_text):
                selection.setdefault(ind.unit_id, []).append(ind.id)
        return selection

    def deadline_bounds(self, step: Step) -> tuple[datetime, datetime]:
        cal = self.sv.calendar
        return (step.time.due(cal, self.now, step.time.minimum),
                step.time.due(cal, self.now, step.time.maximum))

    async def open_collection(self, actor: Person, run_id: int,
                              selection: dict[int, list[int]] | None = None,
                              days: int | None = None) -> list[StepRun]:
        run = await self.get_run(run_id, lock=True)
        step = self._require_open(run, "coordinate")
        await self._require_holder(run, actor, step)
        cycle = await self.get_cycle(run.cycle_id)
        collect = self.sop.first_of_kind("collect")
        if days is not None and not collect.time.minimum <= days <= collect.time.maximum:
            raise InvalidInput(t("err.deadline_range", minimum=collect.time.minimum,
                                 maximum=collect.time.maximum))
        if selection is None:
            selection = await self.default_selection(cycle)
        selection = {u: ids for u, ids in selection.items() if ids}
        if not selection:
            raise InvalidInput("Belum ada indikator dengan target untuk periode ini.")
        due = collect.time.due(self.sv.calendar, self.now, days)
        # validate every bidang before writing anything
        holders: dict[int, Person] = {}
        for unit_id in selection:
            holders[unit_id] = await self.holder_for(cycle.office_id, collect, unit_id)
        await self._complete(run, actor)
        await self._audit("collection.open", actor, cycle, units=sorted(selection),
                          due=due.isoformat())
        runs = []
        for unit_id, indicator_ids in sorted(selection.items()):
            unit = await self.s.get(Unit, unit_id)
            items = []
            for pos, ind_id in enumerate(indicator_ids, start=1):
                ind = await self.s.get(Indicator, ind_id)
                if ind is None or ind.unit_id != unit_id or ind.office_id != cycle.office_id:
                    raise InvalidInput(f"Indikator {ind_id} bukan milik {_esc(unit.name)}.")
                target = await self.target_for(ind, cycle)
                self.s.add(CycleIndicator(
                    cycle_id=cycle.id, indicator_id=ind.id, unit_id=unit_id, position=pos,
                    target=target.value if target else None,
                    target_text=target.value_text if target else None))
                items.append(t("n.data_request_item", no=pos, name=ind.name,
                               unit=ind.unit_of_measure or "-",
                               target=self.target_text(ind, target)))
            new = await self._open_run(cycle, collect, unit_id=unit_id, due=due,
                                       assignee=holders[unit_id])
            runs.append(new)
            await self._notify(
                holders[unit_id], "data_request",
                t("n.data_request", period=self.period(cycle), sender=actor.name,
                  unit=unit.name, due=self.fmt_due(due), count=len(items),
                  items=Raw("\n".join(items))),  # each item escaped by t(); split by enqueue
                step_buttons(StepKind.COLLECT, new.id),
                ref=f"run:{new.id}",
            )
        await self.s.flush()
        return runs

    @staticmethod
    def target_text(ind: Indicator, target: Target | CycleIndicator | None) -> str:
        from reports.numbers import format_number

        if target is None:
            return "-"
        if isinstance(target, Target):
            number, text = target.value, target.value_text
        else:
            number, text = target.target, target.target_text
        if ind.value_type == ValueType.TEXT:
            return text or "-"
        return "-" if number is None else format_number(number)

    # ------------------------------------------------------------- step 4
    async def collect_run_for(self, cycle_id: int, unit_id: int) -> StepRun | None:
        collect = self.sop.first_of_kind("collect")
        return (
            await self.s.execute(
                select(StepRun)
                .where(StepRun.cycle_id == cycle_id, StepRun.step_no == collect.number,
                       StepRun.unit_id == unit_id)
                .order_by(StepRun.round.desc(), StepRun.id.desc())
            )
        ).scalars().first()

    async def _can_enter(self, actor: Person, run: StepRun, item: CycleIndicator | None) -> None:
        self._check_active(actor)
        if actor.id == run.assignee_id:  # the Kabid, a Plh., or whoever it was moved to
            await self._require_holder(run, actor, self.sop.step(run.step_no))
            return
        if actor.role == Role.KABID and actor.unit_id == run.unit_id:
            raise NotAssignee()
        if actor.unit_id != run.unit_id or actor.role not in (Role.KABID, Role.STAF):
            raise NotAllowed()
        if actor.role == Role.STAF and item is not None and item.assigned_to_id != actor.id:
            raise NotAssignee("Indikator ini belum diserahkan kepada Anda oleh Kabid.")

    async def cycle_items(self, cycle_id: int, unit_id: int | None = None
                          ) -> list[CycleIndicator]:
        stmt = select(CycleIndicator).where(CycleIndicator.cycle_id == cycle_id)
        if unit_id is not None:
            stmt = stmt.where(CycleIndicator.unit_id == unit_id)
        return list(
            (await self.s.execute(stmt.order_by(CycleIndicator.unit_id,
                                                CycleIndicator.position))).scalars()
        )

    async def latest_submission(self, cycle_id: int, indicator_id: int) -> Submission | None:
        key = (cycle_id, indicator_id)
        if key not in self._latest:
            rows = await core_objects(self.s, _latest_submission(), {
                "cycle_id": cycle_id, "indicator_id": indicator_id}, Submission)
            self._latest[key] = rows[0][0] if rows else None
        return self._latest[key]

    def keep_latest(self, cycle_id: int, indicator_id: int, sub: Submission | None) -> None:
        """``sub``: the latest revision of the indicator in the cycle, read with
        another statement of this transaction; :meth:`latest_submission` returns it
        unless it read or recorded one already."""
        self._latest.setdefault((cycle_id, indicator_id), sub)

    async def indicators(self, ids: Iterable[int]) -> dict[int, Indicator]:
        """Indicators by id, in one statement for those not in the session yet (a loop
        over a bidang's items then finds each with ``session.get`` without a query)."""
        ids = list(dict.fromkeys(ids))
        found = {i: self.s.identity_map.get(self.s.identity_key(Indicator, i)) for i in ids}
        absent = [i for i, ind in found.items() if ind is None]
        if absent:
            found.update((ind.id, ind) for ind in (await self.s.execute(
                select(Indicator).where(Indicator.id.in_(absent)))).scalars())
        return {i: found[i] for i in ids if found.get(i) is not None}

    async def latest_submissions(self, cycle_id: int, indicator_ids: Iterable[int]
                                 ) -> dict[int, Submission | None]:
        """The latest revision of each of ``indicator_ids`` in the cycle (None where
        there is none), in one statement for those not read yet in this update; later
        ``latest_submission`` calls find them."""
        ids = [i for i in dict.fromkeys(indicator_ids) if (cycle_id, i) not in self._latest]
        if ids:
            found = {sub.indicator_id: sub for sub in (await self.s.execute(
                _latest_submissions(), {"cycle_id": cycle_id, "ids": ids})).scalars()}
            for i in ids:
                self._latest[(cycle_id, i)] = found.get(i)
        return {i: self._latest[(cycle_id, i)] for i in indicator_ids}

    async def record_answer(self, actor: Person, run_id: int, item_id: int, *,
                            raw_text: str, value: Decimal | None = None,
                            value_text: str | None = None, note: str = "",
                            skipped: bool = False,
                            evidence_file_ids: Iterable[int] = (),
                            analysis: dict[str, str] | None = None,
                            read: CycleIndicator | None = None) -> Submission:
        """A new revision of an answer. ``analysis``: the penghambat / upaya / pendukung
        of the value (a revision that keeps the value carries them). ``read``: the item
        as this transaction read it (the data entry's ``ItemView``), not read again."""
        run = await self.get_run(run_id)
        self._require_open(run, "collect")
        item = read if read is not None and read.id == item_id \
            else await self.s.get(CycleIndicator, item_id)
        if item is None or item.cycle_id != run.cycle_id or item.unit_id != run.unit_id:
            raise NotFound()
        await self._can_enter(actor, run, item)
        await self._require_returned(run, item)
        analysis = {k: v.strip() for k, v in (analysis or {}).items() if v and v.strip()}
        if set(analysis) - set(ANALYSIS_FIELDS) or skipped and analysis:
            raise InvalidInput()
        prev = await self.latest_submission(run.cycle_id, item.indicator_id)
        values = dict(
            cycle_id=run.cycle_id, indicator_id=item.indicator_id,
            revision=(prev.revision + 1) if prev else 1, raw_text=raw_text,
            value=value, value_text=value_text, note=note.strip(), skipped=skipped,
            person_id=actor.id, created_at=self.now,
            **{f: analysis.get(f, "") for f in ANALYSIS_FIELDS})
        # one Core INSERT, then the object as if loaded: the unit of work's flush of a
        # new object costs about as much as the rest of a typed answer's statements
        (sub_id,), = await core_rows(self.s, _INSERT_SUBMISSION, values)
        sub = Submission(id=sub_id, **values)
        make_transient_to_detached(sub)
        self.s.add(sub)
        as_written(self.s, sub, inserted=True)  # a rollback takes it out again
        self._latest[(run.cycle_id, item.indicator_id)] = sub
        for fid in evidence_file_ids:
            self.s.add(Evidence(submission_id=sub.id, file_id=fid))
        cycle = await self.get_cycle(run.cycle_id)
        await self._audit("data.answer", actor, cycle, indicator=item.indicator_id,
                          revision=sub.revision, raw=raw_text,
                          value=str(value) if value is not None else value_text,
                          skipped=skipped, **analysis)
        await self.s.flush()
        return sub

    async def returned_answers(self, run: StepRun) -> dict[int, ReturnedAnswer]:
        """The single answers sent back for this collect run, by cycle indicator id
        (empty: the run asks every indicator of the bidang)."""
        rows = (await self.s.execute(select(ReturnedAnswer).where(
            ReturnedAnswer.run_id == run.id).order_by(ReturnedAnswer.id))).scalars()
        return {r.item_id: r for r in rows}

    async def _require_returned(self, run: StepRun, item: CycleIndicator) -> None:
        """A run that asks only some answers again leaves the others as they were sent
        (only a return opens a round after the first)."""
        if run.round <= 1:
            return
        returned = await self.returned_answers(run)
        if returned and item.id not in returned:
            raise WrongState(t("err.not_returned"))

    async def add_evidence(self, actor: Person, run_id: int, submission_id: int,
                           file_id: int) -> None:
        run = await self.get_run(run_id)
        self._require_open(run, "collect")
        sub = await self.s.get(Submission, submission_id)
        if sub is None or sub.cycle_id != run.cycle_id:
            raise NotFound()
        await self._can_enter(actor, run, None)
        returned = await self.returned_answers(run)
        if returned:
            items = {i.indicator_id: i for i in await self.cycle_items(run.cycle_id, run.unit_id)}
            item = items.get(sub.indicator_id)
            if item is None or item.id not in returned:
                raise WrongState(t("err.not_returned"))
        self.s.add(Evidence(submission_id=sub.id, file_id=file_id, added_by_id=actor.id))
        cycle = await self.get_cycle(run.cycle_id)
        await self._audit("data.evidence", actor, cycle, submission=sub.id, file=file_id)

    async def assign_item(self, actor: Person, run_id: int, item_id: int,
                          staff_id: int | None) -> CycleIndicator:
        run = await self.get_run(run_id)
        step = self._require_open(run, "collect")
        await self._require_holder(run, actor, step)
        item = await self.s.get(CycleIndicator, item_id)
        if item is None or item.cycle_id != run.cycle_id or item.unit_id != run.unit_id:
            raise NotFound()
        staff = None
        if staff_id is not None:
            staff = await self.s.get(Person, staff_id)
            if (staff is None or not staff.active or staff.role != Role.STAF
                    or staff.unit_id != run.unit_id):
                raise InvalidInput("Staf tersebut bukan staf aktif bidang ini.")
        item.assigned_to_id = staff_id
        cycle = await self.get_cycle(run.cycle_id)
        await self._audit("data.assign", actor, cycle, item=item.id, staff=staff_id)
        if staff is not None:
            ind = await self.s.get(Indicator, item.indicator_id)
            await self._notify(
                staff, "assignment",
                t("n.assignment", sender=actor.name, indicator=ind.name,
                  period=self.period(cycle), due=self.fmt_due(run.due_at)),
                step_buttons(StepKind.COLLECT, run.id),
                ref=f"run:{run.id}:p{staff.id}",
            )
        return item

    async def missing_answers(self, run: StepRun) -> list[CycleIndicator]:
        items = await self.cycle_items(run.cycle_id, run.unit_id)
        latest = await self.latest_submissions(run.cycle_id, [i.indicator_id for i in items])
        return [item for item in items if latest[item.indicator_id] is None]

    async def submit_unit(self, actor: Person, run_id: int) -> StepRun | None:
        """The Kabid sends the bidang's data to the Kasubag. Returns step 5 if it opened."""
        run = await self.get_run(run_id, lock=True)
        step = self._require_open(run, "collect")
        await self._require_holder(run, actor, step)
        missing = await self.missing_answers(run)
        if missing:
            raise WrongState(t("err.answers_missing", count=len(missing)))
        cycle = await self.get_cycle(run.cycle_id)
        items = await self.cycle_items(run.cycle_id, run.unit_id)
        if self.sv.config.measurement.analysis_mandatory:
            lacking = 0
            ids = [i.indicator_id for i in items]
            inds = await self.indicators(ids)
            latest = await self.latest_submissions(run.cycle_id, ids)
            for item in items:
                ind = inds[item.indicator_id]
                sub = latest[item.indicator_id]
                lacking += bool(await missing_analysis(self, cycle, ind, item, sub))
            if lacking:
                raise WrongState(t("err.analysis_missing", count=lacking))
        await self._complete(run, actor)
        await self._audit("data.submit", actor, cycle, unit=run.unit_id, run=run.id,
                          round=run.round, count=len(items))
        unit = await self.s.get(Unit, run.unit_id)
        coordinator = await self._coordinator_of(cycle)
        await self._notify(coordinator, "unit_submitted",
                           t("n.unit_submitted", unit=unit_name(unit.name),
                             period=self.period(cycle), count=len(items)),
                           [[(t("b.view_unit"), callbacks.encode("eview", cycle.id, unit.id)),
                             (t("b.return_unit"), callbacks.encode("rtn", cycle.id, unit.id))]],
                           ref=f"col:{cycle.id}:{unit.id}")
        return await self._maybe_open_process(cycle, actor, closed_units=())

    async def _coordinator_of(self, cycle: Cycle) -> Person | None:
        coordinate = self.sop.first_of_kind("coordinate")
        run = (
            await self.s.execute(
                select(StepRun).where(StepRun.cycle_id == cycle.id,
                                      StepRun.step_no == coordinate.number)
                .order_by(StepRun.id.desc())
            )
        ).scalars().first()
        person = await self.s.get(Person, run.assignee_id) if run else None
        if person is None:
            return None
        # a Plh./Plt. of the Kasubag, or the new Kasubag after a mutasi, coordinates now
        appt = await covering(self.s, cycle.office_id, coordinate.role, None, self.now)
        if appt is not None and appt.absent_person_id in (person.id, None):
            return await self.s.get(Person, appt.acting_person_id)
        # one rule (bot.core.authority) at the clock's time: a Plh. whose range ended, or a
        # person moved out of the post, no longer coordinates; the post's holder does
        if not await may_hold(self.s, person, coordinate, None, self.now):
            return await self.holder_for(cycle.office_id, coordinate)
        return person

    async def _latest_runs(self, cycle_id: int, step_no: int) -> list[StepRun]:
        rows = (
            await self.s.execute(
                select(StepRun).where(StepRun.cycle_id == cycle_id, StepRun.step_no == step_no)
                .order_by(StepRun.id)
            )
        ).scalars().all()
        latest: dict[int | None, StepRun] = {}
        for r in rows:
            latest[r.unit_id] = r
        return list(latest.values())

    async def _maybe_open_process(self, cycle: Cycle, actor: Person,
                                  closed_units: Sequence[str]) -> StepRun | None:
        collect = self.sop.first_of_kind("collect")
        latest = await self._latest_runs(cycle.id, collect.number)
        if any(r.status == StepStatus.OPEN for r in latest):
            return None
        process = self.sop.next_step(collect.number)
        existing = await self._latest_runs(cycle.id, process.number)
        if existing:
            return None  # step 5 already running (a returned bidang came back)
        new = await self._open_run(cycle, process)
        await self.retire(f"col:{cycle.id}:board")  # the boards of the collection
        holder = await self.s.get(Person, new.assignee_id)
        if closed_units:
            text = t("n.collection_closed", period=self.period(cycle), sender=actor.name,
                     units=", ".join(closed_units), due=self.fmt_due(new.due_at))
        else:
            text = t("n.all_units_in", period=self.period(cycle), due=self.fmt_due(new.due_at))
        await self._notify(holder, "process_open", text,
                           step_buttons(StepKind.PROCESS, new.id),
                           ref=f"run:{new.id}")
        return new

    async def close_collection(self, actor: Person, cycle_id: int, note: str = "") -> StepRun | None:
        cycle = await self.get_cycle(cycle_id)
        coordinator = await self._coordinator_of(cycle)
        self._check_active(actor)
        if coordinator is None or actor.id != coordinator.id:
            raise NotAllowed()
        collect = self.sop.first_of_kind("collect")
        open_runs = [r for r in await self._latest_runs(cycle.id, collect.number)
                     if r.status == StepStatus.OPEN]
        if not open_runs:
            raise WrongState(t("err.wrong_state", detail="tidak ada bidang yang masih mengisi."))
        names = []
        for r in open_runs:
            await self._complete(r, actor, note.strip() or "Ditutup tanpa data",
                                 status=StepStatus.SKIPPED)
            names.append((await self.s.get(Unit, r.unit_id)).name)
        await self._audit("collection.close", actor, cycle, missing=names, note=note.strip())
        return await self._maybe_open_process(cycle, actor, closed_units=names)

    async def _coordinating(self, actor: Person, cycle_id: int) -> Cycle:
        """The cycle, when ``actor`` is its coordinator now (steps 4-5), else NotAllowed."""
        cycle = await self.get_cycle(cycle_id)
        self._check_active(actor)
        coordinator = await self._coordinator_of(cycle)
        if coordinator is None or actor.id != coordinator.id:
            raise NotAllowed()
        return cycle

    async def _send_back(self, cycle: Cycle, unit_id: int, note: str) -> tuple[StepRun, StepRun]:
        """A bidang's sent data goes back for correction while the processing is open:
        its run is returned (with ``note``), the buttons that acted on it lose their
        keyboards, and a new round opens. Returns (the returned run, the new one)."""
        collect = self.sop.first_of_kind("collect")
        process = self.sop.next_step(collect.number)
        proc_runs = await self._latest_runs(cycle.id, process.number)
        if proc_runs and proc_runs[-1].status != StepStatus.OPEN:
            raise WrongState(t("err.wrong_state", detail="data sudah selesai diolah."))
        run = await self.collect_run_for(cycle.id, unit_id)
        if run is None or run.status != StepStatus.DONE:
            raise WrongState(t("err.wrong_state", detail="bidang ini belum mengirim data."))
        run.status = StepStatus.RETURNED
        run.note = note
        await self.retire(f"col:{cycle.id}:{unit_id}")  # its "Lihat data / Kembalikan"
        await self.retire(f"col:{cycle.id}:board")  # the /status board it was pressed on
        new = await self._open_run(cycle, collect, unit_id=unit_id, round_=run.round + 1)
        return run, new

    async def return_unit(self, actor: Person, cycle_id: int, unit_id: int, note: str) -> StepRun:
        """The Kasubag sends one bidang's data back (5 -> 4 for that bidang)."""
        cycle = await self._coordinating(actor, cycle_id)
        if not note.strip():
            raise InvalidInput(t("err.reason_required"))
        run, new = await self._send_back(cycle, unit_id, note.strip())
        await self._audit("data.return", actor, cycle, unit=unit_id, run=run.id,
                          new_run=new.id, note=note.strip())
        unit = await self.s.get(Unit, unit_id)
        holder = await self.s.get(Person, new.assignee_id)
        await self._notify(holder, "unit_returned",
                           t("n.unit_returned", unit=unit_name(unit.name), sender=actor.name,
                             note=note.strip(), due=self.fmt_due(new.due_at)),
                           step_buttons(StepKind.COLLECT, new.id),
                           ref=f"run:{new.id}")
        return new

    async def return_answers(self, actor: Person, cycle_id: int, unit_id: int,
                             notes: dict[int, str]) -> StepRun:
        """The Kasubag sends single answers of one bidang back, a note for each
        (``notes``: cycle indicator id -> note). The bidang's new round asks only those;
        the rest stays as sent. The Kabid is told, and the staf who answered one of them
        is told of theirs."""
        cycle = await self._coordinating(actor, cycle_id)
        notes = {int(k): (v or "").strip() for k, v in notes.items()}
        if not notes:
            raise InvalidInput(t("err.pick_answers"))
        if any(not v for v in notes.values()):
            raise InvalidInput(t("err.reason_required"))
        items = {i.id: i for i in await self.cycle_items(cycle.id, unit_id)}
        if any(k not in items for k in notes):
            raise NotFound()
        run, new = await self._send_back(cycle, unit_id,
                                         t("c.run_note_answers", count=len(notes)))
        holder = await self.s.get(Person, new.assignee_id)
        unit = await self.s.get(Unit, unit_id)
        lines: dict[int, list[str]] = {}  # person id -> their lines
        logged = []
        for item_id in sorted(notes, key=lambda k: items[k].position):
            item = items[item_id]
            ind = await self.s.get(Indicator, item.indicator_id)
            sub = await self.latest_submission(cycle.id, item.indicator_id)
            corrector = holder
            if (sub is not None and item.assigned_to_id and sub.person_id == item.assigned_to_id
                    and sub.person_id != holder.id):
                staff = await self.s.get(Person, sub.person_id)
                if staff is not None and staff.active and staff.unit_id == unit_id:
                    corrector = staff
            self.s.add(ReturnedAnswer(run_id=new.id, item_id=item.id,
                                      submission_id=sub.id if sub else None,
                                      note=notes[item_id], person_id=corrector.id))
            line = t("n.answer_returned_line", name=ind.name, note=notes[item_id])
            lines.setdefault(holder.id, []).append(
                line if corrector.id == holder.id
                else line + t("n.answer_returned_by", name=corrector.name))
            if corrector.id != holder.id:
                lines.setdefault(corrector.id, []).append(line)
            logged.append({"indicator": item.indicator_id, "note": notes[item_id],
                           "submission": sub.id if sub else None, "to": corrector.id})
        await self.s.flush()
        await self._audit("data.return_answers", actor, cycle, unit=unit_id, run=run.id,
                          new_run=new.id, answers=logged)
        for person_id, person_lines in lines.items():
            person = await self.s.get(Person, person_id)
            await self._notify(person, "answers_returned",
                               t("n.answers_returned", unit=unit_name(unit.name),
                                 sender=actor.name, count=len(person_lines),
                                 lines=Raw("\n".join(person_lines)),
                                 due=self.fmt_due(new.due_at)),
                               step_buttons(StepKind.COLLECT, new.id),
                               ref=f"run:{new.id}")
        return new

    # ------------------------------------------------------------- steps 5 - 6
    async def complete_process(self, actor: Person, run_id: int, note: str = "") -> StepRun:
        run = await self.get_run(run_id, lock=True)
        step = self._require_open(run, "process")
        await self._require_holder(run, actor, step)
        cycle = await self.get_cycle(run.cycle_id)
        collect = self.sop.first_of_kind("collect")
        still = [r for r in await self._latest_runs(cycle.id, collect.number)
                 if r.status == StepStatus.OPEN]
        if still:
            names = [(await self.s.get(Unit, r.unit_id)).name for r in still]
            raise WrongState(t("err.unit_not_done", units=", ".join(names)))
        await self._complete(run, actor, note)
        await self.retire(f"col:{cycle.id}")  # no bidang can be returned any more
        await self._audit("process.done", actor, cycle, run=run.id)
        nxt = self.sop.next_step(step.number)
        new = await self._open_run(cycle, nxt)
        await self._notify_step(cycle, new, step_buttons(nxt.kind, new.id))
        return new

    async def _tell_absent(self, run: StepRun, actor: Person) -> None:
        """The absent official is told what their Plh./Plt. did in their name."""
        appt = await acting_for(self.s, actor, run.role, run.unit_id, self.now)
        if appt is None or appt.absent_person_id in (None, actor.id):
            return
        absent = await self.s.get(Person, appt.absent_person_id)
        if absent is None or not absent.active:
            return
        step = self.sop.step(run.step_no)
        cycle = await self.get_cycle(run.cycle_id)
        verb = {StepStatus.RETURNED: "mengembalikan", StepStatus.SKIPPED: "menutup"}.get(
            run.status, "menyelesaikan")
        await self._notify(absent, "acting_done", t(
            "a.n_done_in_name", kind=appt.kind.label, name=actor.name, verb=verb,
            step=step.number, activity=step.activity, period=self.period(cycle)))

    async def task_buttons(self, run: StepRun) -> list[list[tuple[str, str]]]:
        """The button that takes a person straight to an open step (its card, /tugas,
        the Plh.'s hand-over), from the one table of step kinds."""
        kind = self.sop.step(run.step_no).kind
        doc = None
        if STEP_BUTTONS[kind].on_document:
            doc = await self.current_document(run.cycle_id)
            if doc is None:
                return []
        return step_buttons(kind, run.id, doc.id if doc else None)

    async def approval_by(self, person_id: int, run_id: int, document_id: int
                          ) -> Approval | None:
        """What this person already decided on this version at this step, if anything."""
        return (await self.s.execute(select(Approval).where(
            Approval.step_run_id == run_id, Approval.document_id == document_id,
            Approval.person_id == person_id))).scalars().first()

    async def current_document(self, cycle_id: int) -> Document | None:
        return (
            await self.s.execute(
                select(Document).where(Document.cycle_id == cycle_id)
                .order_by(Document.version.desc()).limit(1)
            )
        ).scalar_one_or_none()

    async def add_document(self, actor: Person, cycle: Cycle, *, sha256: str,
                           workbook_file_id: int | None, pdf_file_id: int | None,
                           chart_file_id: int | None, source: str = "compiled") -> Document:
        """Record a new version of the cycle's documents (compiled or uploaded)."""
        prev = await self.current_document(cycle.id)
        if prev is not None and prev.status in (DocumentStatus.DRAFT, DocumentStatus.RETURNED,
                                                DocumentStatus.SUBMITTED,
                                                DocumentStatus.INITIALLED):
            prev.status = DocumentStatus.SUPERSEDED
        doc = Document(cycle_id=cycle.id, version=(prev.version + 1) if prev else 1,
                       status=DocumentStatus.DRAFT, sha256=sha256,
                       workbook_file_id=workbook_file_id, pdf_file_id=pdf_file_id,
                       chart_file_id=chart_file_id, source=source, created_by_id=actor.id,
                       created_at=self.now)
        self.s.add(doc)
        await self.s.flush()
        await self._audit("document.version", actor, cycle, document=doc.id,
                          version=doc.version, sha256=sha256, source=source)
        return doc

    async def submit_documents(self, actor: Person, run_id: int, document_id: int) -> StepRun:
        run = await self.get_run(run_id, lock=True)
        step = self._require_open(run, "compile")
        await self._require_holder(run, actor, step)
        cycle = await self.get_cycle(run.cycle_id)
        doc = await self.current_document(cycle.id)
        if doc is None or doc.id != document_id or doc.status != DocumentStatus.DRAFT:
            raise StaleAction()
        doc.status = DocumentStatus.SUBMITTED
        await self._complete(run, actor)
        await self._audit("document.submit", actor, cycle, document=doc.id, sha256=doc.sha256)
        return await self._open_review(cycle, self.sop.next_step(step.number), doc, actor)

    async def _open_review(self, cycle: Cycle, step: Step, doc: Document,
                           sender: Person) -> StepRun:
        new = await self._open_run(cycle, step)
        holder = await self.s.get(Person, new.assignee_id)
        label = "paraf" if step.kind == "review" else "tanda tangan"
        files = [{"file_id": fid, "kind": "document"}
                 for fid in (doc.pdf_file_id, doc.workbook_file_id) if fid]
        text = t("n.review_request", period=self.period(cycle), action=label,
                 version=doc.version, sender=sender.name, due=self.fmt_due(new.due_at))
        before, after = files, None
        if step.kind == "sign":
            # the Kadis decides on his phone: the chart with the summary, the buttons,
            # then the PDF and the workbook as files
            text = f"{text}\n\n{await self._sign_summary(cycle, step, doc)}"
            before = ([{"file_id": doc.chart_file_id, "kind": "photo"}]
                      if doc.chart_file_id else None)
            after = files
        await self._notify(
            holder, f"review{step.number}", text,
            step_buttons(step.kind, new.id, doc.id),
            files=before, after=after, ref=f"run:{new.id}",
        )
        return new

    async def _sign_summary(self, cycle: Cycle, step: Step, doc: Document) -> str:
        """The phone summary of a sign request (``reports.summary.sign_summary``), with
        what changed since the version the signer last returned."""
        from bot.core.documents import document_data
        from reports.summary import sign_summary

        data = await document_data(self, cycle, version=doc.version)
        returned = (await self.s.execute(
            select(Document).join(Approval, Approval.document_id == Document.id)
            .join(StepRun, StepRun.id == Approval.step_run_id)
            .where(Document.cycle_id == cycle.id, StepRun.step_no == step.number,
                   Approval.action == ApprovalAction.RETURN)
            .order_by(Approval.id.desc()).limit(1))).scalars().first()
        if returned is None:
            return sign_summary(data)
        subs = (await self.s.execute(
            select(Submission, Indicator.name)
            .join(Indicator, Indicator.id == Submission.indicator_id)
            .where(Submission.cycle_id == cycle.id)
            .order_by(Submission.indicator_id, Submission.id))).all()
        then: dict[int, Submission] = {}
        now: dict[int, tuple[Submission, str]] = {}
        for sub, name in subs:
            if sub.created_at <= returned.created_at:
                then[sub.indicator_id] = sub
            now[sub.indicator_id] = (sub, name)
        changes = []
        for ind_id, (sub, name) in now.items():
            old = then.get(ind_id)
            if old is None or old.id != sub.id:
                changes.append((name, (old.raw_text if old else "") or "-", sub.raw_text or "-"))
        return sign_summary(data, returned_version=returned.version, changes=changes)

    # ------------------------------------------------------------- steps 7 - 8
    async def _review_target(self, actor: Person, run_id: int, document_id: int
                             ) -> tuple[StepRun, Step, Cycle, Document, Capacity]:
        run = await self.get_run(run_id, lock=True)
        step = self._require_open(run, "review", "sign")
        cap = await self._require_holder(run, actor, step)
        cycle = await self.get_cycle(run.cycle_id)
        doc = await self.current_document(cycle.id)
        expected = DocumentStatus.SUBMITTED if step.kind == "review" else DocumentStatus.INITIALLED
        if doc is None or doc.id != document_id or doc.status != expected:
            raise StaleAction()
        return run, step, cycle, doc, cap

    async def approve(self, actor: Person, run_id: int, document_id: int, *,
                      numbered_now: bool = False) -> StepRun:
        """Paraf (step 7) or signature (step 8) of exactly ``document_id``.
        ``numbered_now``: a TTE signature numbers the document in the same breath
        (:meth:`assign_number` with ``at_signature``), so the number step is opened
        without a "Beri nomor" card."""
        run, step, cycle, doc, cap = await self._review_target(actor, run_id, document_id)
        action = ApprovalAction.PARAF if step.kind == "review" else ApprovalAction.SIGN
        # what is approved: the sha256 of the exact PDF shown (doc.sha256) and, apart,
        # of the workbook sent with it
        wb = await self.s.get(StoredFile, doc.workbook_file_id) if doc.workbook_file_id else None
        self.s.add(Approval(document_id=doc.id, step_run_id=run.id, person_id=actor.id,
                            action=action, document_sha256=doc.sha256, created_at=self.now,
                            workbook_sha256=wb.sha256 if wb is not None else "",
                            acting_as=cap.acting_label, capacity=cap.label))
        doc.status = (DocumentStatus.INITIALLED if step.kind == "review"
                      else DocumentStatus.SIGNED)
        await self._complete(run, actor)
        await self._audit(f"document.{action.value}", actor, cycle, document=doc.id,
                          version=doc.version, sha256=doc.sha256)
        nxt = self.sop.next_step(step.number)
        if nxt.kind in ("review", "sign"):
            return await self._open_review(cycle, nxt, doc, actor)
        new = await self._open_run(cycle, nxt)
        if numbered_now and nxt.kind == "number":
            return new
        await self._notify_step(cycle, new, step_buttons(nxt.kind, new.id)
                                if nxt.kind == "number" else None)
        return new

    async def return_documents(self, actor: Person, run_id: int, document_id: int,
                               reason: str) -> StepRun:
        if not reason or not reason.strip():
            raise InvalidInput(t("err.reason_required"))
        run, step, cycle, doc, cap = await self._review_target(actor, run_id, document_id)
        wb = await self.s.get(StoredFile, doc.workbook_file_id) if doc.workbook_file_id else None
        self.s.add(Approval(document_id=doc.id, step_run_id=run.id, person_id=actor.id,
                            action=ApprovalAction.RETURN, reason=reason.strip(),
                            document_sha256=doc.sha256, created_at=self.now,
                            workbook_sha256=wb.sha256 if wb is not None else "",
                            acting_as=cap.acting_label, capacity=cap.label))
        doc.status = DocumentStatus.RETURNED
        await self._complete(run, actor, reason.strip(), status=StepStatus.RETURNED)
        await self._audit("document.return", actor, cycle, document=doc.id, step=step.number,
                          reason=reason.strip(), sha256=doc.sha256)
        back = self.sop.step(step.return_to or step.number - 1)
        prev_runs = await self._latest_runs(cycle.id, back.number)
        round_ = (prev_runs[-1].round + 1) if prev_runs else 1
        new = await self._open_run(cycle, back, round_=round_)
        holder = await self.s.get(Person, new.assignee_id)
        await self._notify(holder, "documents_returned",
                           t("n.documents_returned", period=self.period(cycle),
                             sender=actor.name, reason=reason.strip(),
                             due=self.fmt_due(new.due_at)),
                           step_buttons(StepKind.COMPILE, new.id),
                           ref=f"run:{new.id}")
        return new

    # ------------------------------------------------------------- step 9
    def format_letter_number(self, sequence: int, on: date,
                             doc_type: str = MEASUREMENT_REPORT, unit: str = "") -> str:
        """The number of ``doc_type`` (the office's numbering: its classification and
        code), with the office's unit code."""
        return self.sv.config.numbering.number(doc_type, sequence=sequence, on=on,
                                               unit=unit or self.sv.config.office.unit_code)

    async def next_number(self, office_id: int, on: date,
                          doc_type: str = MEASUREMENT_REPORT) -> str:
        """The number :meth:`allocate_number` would give next, read only (a build
        stamps it before the number is given, then checks it got this one): the same
        office's register, format and unit code."""
        await self._scope(office_id)
        office = await self.s.get(Office, office_id)
        last = (await self.s.execute(select(LetterCounter.last_sequence).where(
            LetterCounter.office_id == office_id, LetterCounter.year == on.year))
        ).scalar_one_or_none()
        return self.format_letter_number((last or 0) + 1, on, doc_type, office.unit_code)

    async def allocate_number(self, office_id: int, on: date, *, subject: str = "",
                              doc_type: str = MEASUREMENT_REPORT,
                              recipient: str = "", cycle_id: int | None = None,
                              document_id: int | None = None,
                              person_id: int | None = None) -> LetterNumber:
        """The next number of the office's agenda register (counted per office and
        year); the database serialises it."""
        await self._scope(office_id)
        office = await self.s.get(Office, office_id)
        year = on.year
        stmt = (update(LetterCounter)
                .where(LetterCounter.office_id == office_id, LetterCounter.year == year)
                .values(last_sequence=LetterCounter.last_sequence + 1)
                .returning(LetterCounter.last_sequence))
        seq = (await self.s.execute(stmt)).scalar_one_or_none()
        if seq is None:
            # first number of the year: create the counter (a racing creator loses on
            # the primary key and retries through the update above)
            from sqlalchemy.exc import IntegrityError

            try:
                async with self.s.begin_nested():
                    self.s.add(LetterCounter(office_id=office_id, year=year, last_sequence=1))
                seq = 1
            except IntegrityError:
                seq = (await self.s.execute(stmt)).scalar_one()
        letter = LetterNumber(office_id=office_id, year=year, sequence=seq,
                              number=self.format_letter_number(seq, on, doc_type, office.unit_code),
                              letter_date=on,
                              subject=subject, recipient=recipient, cycle_id=cycle_id,
                              document_id=document_id, person_id=person_id,
                              created_at=self.now)
        self.s.add(letter)
        await self.s.flush()
        return letter

    async def assign_number(self, actor: Person, run_id: int, *,
                            at_signature: bool = False) -> LetterNumber:
        """Step 9. ``at_signature``: the number given by the bot when the signer signs
        with their own TTE (the number must be in the PDF before that signature, which
        nothing may change afterwards); ``actor`` is then the signer, and the step's
        holder is told the number."""
        run = await self.get_run(run_id, lock=True)
        step = self._require_open(run, "number")
        holder = None
        if at_signature:
            holder = await self.s.get(Person, run.assignee_id)
        else:
            await self._require_holder(run, actor, step)
        cycle = await self.get_cycle(run.cycle_id)
        doc = await self.current_document(cycle.id)
        if doc is None or doc.status != DocumentStatus.SIGNED:
            raise WrongState(t("err.wrong_state", detail="dokumen belum ditandatangani."))
        today = to_wib(self.now).date()
        recipients = ", ".join(a.name for a in self.sv.config.delivery.agencies)
        letter = await self.allocate_number(
            cycle.office_id, today, subject=f"{cycle.document_type} {self.period(cycle)}",
            recipient=recipients, cycle_id=cycle.id, document_id=doc.id, person_id=actor.id)
        doc.status = DocumentStatus.NUMBERED
        await self._complete(run, actor, letter.number)
        await self._audit("document.number", actor, cycle, document=doc.id,
                          number=letter.number, sequence=letter.sequence,
                          **({"at_signature": True} if at_signature else {}))
        if holder is not None and holder.id != actor.id:
            await self._notify(holder, "numbered_at_signature",
                               t("n.numbered_at_signature", period=self.period(cycle),
                                 number=letter.number, signer=actor.name))
        nxt = self.sop.next_step(step.number)
        new = await self._open_run(cycle, nxt)
        await self._notify_step(cycle, new, step_buttons(nxt.kind, new.id))
        for person_id in {cycle.started_by_id}:
            await self._notify(await self.s.get(Person, person_id), "numbered",
                               t("n.numbered", period=self.period(cycle), number=letter.number,
                                 date=_fmt_date(today)))
        return letter

    async def letter_of(self, cycle_id: int) -> LetterNumber | None:
        return (
            await self.s.execute(
                select(LetterNumber).where(LetterNumber.cycle_id == cycle_id)
                .order_by(LetterNumber.id.desc())
            )
        ).scalars().first()

    # ------------------------------------------------------------- steps 10 - 11
    async def archive(self, actor: Person, run_id: int) -> StepRun:
        run = await self.get_run(run_id, lock=True)
        step = self._require_open(run, "archive")
        await self._require_holder(run, actor, step)
        cycle = await self.get_cycle(run.cycle_id)
        doc = await self.current_document(cycle.id)
        if doc is None or doc.status != DocumentStatus.NUMBERED:
            raise WrongState(t("err.wrong_state", detail="dokumen belum diberi nomor."))
        doc.status = DocumentStatus.ARCHIVED
        await self._complete(run, actor)
        await self._audit("document.archive", actor, cycle, document=doc.id, sha256=doc.sha256)
        nxt = self.sop.next_step(step.number)
        new = await self._open_run(cycle, nxt)
        for agency in self.sv.config.delivery.agencies:
            contact = (
                await self.s.execute(
                    select(Person).where(Person.office_id == cycle.office_id,
                                         Person.role == Role.CONTACT,
                                         Person.agency_key == agency.key,
                                         Person.active.is_(True))
                )
            ).scalars().first()
            self.s.add(Delivery(cycle_id=cycle.id, agency_key=agency.key,
                                agency_name=agency.name, contact_person_id=contact.id
                                if contact else None))
        await self.s.flush()
        await self._notify_step(cycle, new, step_buttons(nxt.kind, new.id))
        return new

    async def deliveries(self, cycle_id: int) -> list[Delivery]:
        return list((await self.s.execute(
            select(Delivery).where(Delivery.cycle_id == cycle_id).order_by(Delivery.id)
        )).scalars())

    async def send_delivery(self, actor: Person, delivery_id: int) -> Delivery:
        """The staf sends the documents to an agency contact registered in the bot."""
        delivery = await self.s.get(Delivery, delivery_id)
        if delivery is None:
            raise NotFound()
        run = await self.deliver_run(delivery.cycle_id)
        step = self._require_open(run, "deliver")
        await self._require_holder(run, actor, step)
        if delivery.status != DeliveryStatus.PENDING:
            raise StaleAction()
        if delivery.contact_person_id is None:
            raise WrongState(t("err.wrong_state", detail="OPD ini tidak punya kontak di bot."))
        cycle = await self.get_cycle(delivery.cycle_id)
        doc = await self.current_document(cycle.id)
        letter = await self.letter_of(cycle.id)
        delivery.status = DeliveryStatus.SENT
        delivery.sent_at = self.now
        delivery.recorded_by_id = actor.id
        await self._audit("delivery.send", actor, cycle, agency=delivery.agency_key)
        contact = await self.s.get(Person, delivery.contact_person_id)
        files = [{"file_id": fid, "kind": "document"}
                 for fid in (doc.pdf_file_id, doc.workbook_file_id) if fid]
        await self._notify(contact, "delivery",
                           t("n.delivery_request", period=self.period(cycle),
                             number=letter.number if letter else "-",
                             agency=delivery.agency_name),
                           [[(t("b.confirm_receipt"), callbacks.encode("rcv", delivery.id))]],
                           files=files, ref=f"dlv:{delivery.id}")
        await self._finish_sending(cycle, run, actor)
        return delivery

    async def _finish_sending(self, cycle: Cycle, run: StepRun, actor: Person) -> None:
        """Step 11's own work is done once no delivery is left to send: the run is
        completed (its time measured against the standard); what is left, the agencies'
        receipts, is their time, not the office's."""
        if run.status != StepStatus.OPEN:
            return
        deliveries = await self.deliveries(cycle.id)
        if any(d.status == DeliveryStatus.PENDING for d in deliveries):
            return
        await self._complete(run, actor)
        waiting = [d.agency_key for d in deliveries if d.status == DeliveryStatus.SENT]
        await self._audit("delivery.all_sent", actor, cycle, run=run.id, waiting=waiting)

    async def deliver_run(self, cycle_id: int) -> StepRun:
        """The newest run of step 11 (deliver) of the cycle; StaleAction when none."""
        deliver = self.sop.first_of_kind("deliver")
        runs = await self._latest_runs(cycle_id, deliver.number)
        if not runs:
            raise StaleAction()
        return runs[-1]

    async def record_receipt(self, actor: Person, delivery_id: int, *, received_by: str = "",
                             receipt_file_id: int | None = None) -> Delivery:
        """A receipt: confirmed by the agency's contact, or recorded by the staf."""
        delivery = await self.s.get(Delivery, delivery_id)
        if delivery is None:
            raise NotFound()
        run = await self.deliver_run(delivery.cycle_id)
        step = self.sop.step(run.step_no)
        if step.kind != "deliver":
            raise StaleAction()
        cycle = await self.get_cycle(delivery.cycle_id)
        # a receipt may come after the sending is done (the run closed), never after
        # the cycle closed
        if cycle.status != CycleStatus.ACTIVE or run.status not in (StepStatus.OPEN,
                                                                     StepStatus.DONE):
            raise StaleAction()
        self._check_active(actor)
        if actor.id == delivery.contact_person_id:
            if delivery.status != DeliveryStatus.SENT:
                raise StaleAction()
        else:
            await self._require_holder(run, actor, step)
            if receipt_file_id is None:
                raise InvalidInput("Kirim foto tanda terima yang sudah ditandatangani.")
        if delivery.status == DeliveryStatus.RECEIVED:
            raise StaleAction()
        delivery.status = DeliveryStatus.RECEIVED
        if delivery.sent_at is None:  # handed over in person: sent and received at once
            delivery.sent_at = self.now
        delivery.received_at = self.now
        delivery.received_by = received_by or actor.name
        delivery.receipt_file_id = receipt_file_id
        if delivery.recorded_by_id is None:
            delivery.recorded_by_id = actor.id
        await self._audit("delivery.receipt", actor, cycle, agency=delivery.agency_key,
                          received_by=delivery.received_by, file=receipt_file_id)
        # the holder is told once, by the tanda terima document (bot/core/archive.py)
        await self.retire(f"dlv:{delivery.id}")
        await self.s.flush()
        await self._finish_sending(cycle, run, actor)
        pending = [d for d in await self.deliveries(cycle.id)
                   if d.status != DeliveryStatus.RECEIVED]
        if not pending:
            await self._close_cycle(cycle, run, actor)
        return delivery

    async def _close_cycle(self, cycle: Cycle, run: StepRun, actor: Person) -> None:
        if run.status == StepStatus.OPEN:
            await self._complete(run, actor)
        cycle.status = CycleStatus.CLOSED
        cycle.closed_at = self.now
        letter = await self.letter_of(cycle.id)
        await self._audit("cycle.close", actor, cycle, number=letter.number if letter else None)
        involved = set(
            (await self.s.execute(
                select(StepRun.assignee_id).where(StepRun.cycle_id == cycle.id)
            )).scalars()
        )
        for pid in sorted(p for p in involved if p):
            await self._notify(await self.s.get(Person, pid), "cycle_closed",
                               t("n.cycle_closed", period=self.period(cycle),
                                 number=letter.number if letter else "-"))

    # ------------------------------------------------------------- queries
    async def runs_of(self, cycle_id: int) -> list[StepRun]:
        return list((await self.s.execute(
            select(StepRun).where(StepRun.cycle_id == cycle_id).order_by(StepRun.id)
        )).scalars())

    async def open_runs_for(self, person: Person) -> list[StepRun]:
        return list((await self.s.execute(
            select(StepRun).where(StepRun.assignee_id == person.id,
                                  StepRun.status == StepStatus.OPEN)
            .order_by(StepRun.due_at)
        )).scalars())

    async def find_cycle(self, office_id: int, kind: CycleKind, year: int,
                         quarter: int | None) -> Cycle | None:
        """The office's cycle of that period, if one was started."""
        return (await self.s.execute(select(Cycle).where(
            Cycle.office_id == office_id, Cycle.kind == kind, Cycle.year == year,
            Cycle.quarter == (quarter if kind == CycleKind.QUARTERLY else 0)))
        ).scalar_one_or_none()

    async def recent_cycles(self, office_id: int, limit: int) -> list[Cycle]:
        """The office's newest cycles, newest first."""
        return list((await self.s.execute(select(Cycle).where(Cycle.office_id == office_id)
                                          .order_by(Cycle.id.desc()).limit(limit))).scalars())

    async def handed_runs(self, person: Person) -> list[StepRun]:
        """The open data-entry runs in which indicators are handed to ``person`` (a staf),
        each once."""
        rows = (await self.s.execute(
            select(StepRun)
            .join(CycleIndicator, (StepRun.cycle_id == CycleIndicator.cycle_id)
                  & (StepRun.unit_id == CycleIndicator.unit_id))
            .where(CycleIndicator.assigned_to_id == person.id,
                   StepRun.status == StepStatus.OPEN)
            .order_by(StepRun.id))).scalars().all()
        return list(dict.fromkeys(rows))

    async def active_cycles(self, office_id: int | None = None) -> list[Cycle]:
        stmt = select(Cycle).where(Cycle.status == CycleStatus.ACTIVE)
        if office_id is not None:
            stmt = stmt.where(Cycle.office_id == office_id)
        return list((await self.s.execute(stmt.order_by(Cycle.id))).scalars())

    async def current_steps(self, cycle_id: int) -> list[StepRun]:
        return list((await self.s.execute(
            select(StepRun).where(StepRun.cycle_id == cycle_id,
                                  StepRun.status == StepStatus.OPEN).order_by(StepRun.step_no)
        )).scalars())

    async def count_submissions(self, cycle_id: int) -> int:
        return (await self.s.execute(
            select(func.count()).select_from(Submission).where(Submission.cycle_id == cycle_id)
        )).scalar_one()


@functools.cache
def _latest_submission():
    """Built once: an answer's latest revision is read on every typed answer."""
    sub = Submission.__table__
    return (select(sub)  # the table's columns: models.session.core_objects
            .where(sub.c.cycle_id == bindparam("cycle_id"),
                   sub.c.indicator_id == bindparam("indicator_id"))
            .order_by(sub.c.revision.desc())
            .limit(1))


@functools.cache
def _latest_submissions():
    """Built once: the latest revision of several indicators (a summary card, a send)."""
    last = (select(Submission.indicator_id, func.max(Submission.revision).label("rev"))
            .where(Submission.cycle_id == bindparam("cycle_id"),
                   Submission.indicator_id.in_(bindparam("ids", expanding=True)))
            .group_by(Submission.indicator_id).subquery())
    return (select(Submission)
            .join(last, (Submission.indicator_id == last.c.indicator_id)
                  & (Submission.revision == last.c.rev))
            .where(Submission.cycle_id == bindparam("cycle_id")))


def _esc(text: str) -> str:
    from bot.render import esc

    return esc(text)


def _fmt_date(d: date) -> str:
    from reports.numbers import format_date

    return format_date(d)


_INSERT_SUBMISSION = insert(Submission.__table__).returning(Submission.__table__.c.id)
