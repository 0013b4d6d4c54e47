"""Deadlines: reminders, escalation, the daily digest and the quarterly prompt.

No Telegram here. Each function takes a database session and the services, writes
``Reminder`` rows and outbox messages, and leaves the commit to the caller (the
scheduler job wraps each call in ``async with session.begin()``). Everything is
derived from the database and the clock, so a restart re-derives what is due.

The reminder points of an OPEN step run that has a ``due_at`` (kind, level):

    share     0  step in days only: when ``share_of_time`` (50 %) of the working time
                 from ``started_at`` to ``due_at`` has passed (working calendar); left
                 out when it would not come before the "lastday" point
    lastday   0  step in days only, when ``last_day_morning``: the office opening of
                 the last working day (``last_working_day_morning(due_at)``); left out
                 when that is not after ``started_at``
    due       0  at ``due_at``, to the holder
    overdue   n  n >= 1, at ``add_working_days(due_at, n * escalation_interval)``, to
                 the holder ("terlambat 1 hari 2 jam")
    escalate  n  the same moment, to the next role up (``[reminders] escalation``:
                 kabid/staf -> kasubag -> sekretaris -> kadis), every level to that
                 same superior. The Kadis has nobody above: no row, only the holder's
                 "overdue" goes out. A role with a superior role but no active person
                 of it (or the holder being that person) gets the row, no message

Rules:

* Office hours only (``office_hours_only``): nothing is sent while the office is
  closed; a point that falls at night, on a weekend or a holiday is sent at the next
  opening (the first sweep on or after it). With the option off, a point is sent at the
  first sweep after it.
* A point is recorded once: a ``Reminder`` row (step_run_id, kind, level) is written in
  the transaction that queues its message (``outbox_id`` points at it), and the unique
  constraint means a restart neither repeats nor skips one (a conflicting insert fails
  the whole sweep, which the next tick repeats from the database). On PostgreSQL the
  runs are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` first, so a second bot
  process skips them; the recorded state is read again after the claim.
* Coalescing: all points of a run that are due at one sweep (the bot was down, or a
  point waited for the opening) are recorded, but each person gets ONE message, the
  most severe (share < lastday < due < overdue 1 < overdue 2 ...). Every row of that
  person points at that one outbox message.
* A run that is no longer OPEN (done, returned, skipped) gets nothing.
* The holder's message carries the button of the step (dsp, crd, ent, proc, cmp,
  prf/sgn + ret with the current document, num, arc, task); the superior's message has
  no button: they cannot act on the step, they can call the holder.

Cost: two range scans of ``ix_step_run_open_due (status, due_at)``: the runs past their
deadline, and the runs in days whose deadline is within the horizon (the furthest a
share/lastday point can lie before it, a few working days) and whose early points are
not all recorded. The recorded state comes with each row from index seeks on the
reminder's unique constraint; an O(1) working-time measure discards the runs whose next
point is still ahead before the calendar is asked for an exact time; rows and messages
are inserted in bulk. See ``bench/bench_sweep.py``.

Receipts (step 11): the step's own work, sending, is an ordinary run (reminded and
escalated as above). The receipts the agencies return are their time, not the
office's: :func:`receipt_sweep` reminds the contact of each agency whose delivery was
sent and not yet confirmed, ``[delivery] receipt_reminder_days`` working days after the
sending and as often again, at most ``receipt_reminder_max`` times (``ReceiptReminder``
rows, one per level, recorded in the transaction that queues the message); it writes
no ``Reminder`` row, so nothing escalates inside the office. With the last one, the
person who sent the documents is told (no lateness: a button to record the signed paper
receipt instead). The digest lists the waits apart from the late steps.

The digest goes to the Kadis, Sekretaris and Kasubag once per working day while the
office is open and at least one cycle is active (outbox kind ``digest:YYYY-MM-DD``).
The quarterly prompt asks the Kadis, from the first working day after a quarter ends
until the end of that month, whether to start the cycle of the quarter (and after
31 December of the year too), once per period (outbox kind
``prompt:<kind>:<year>:<quarter>``) and never for a period that already has a cycle.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, exists, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import callbacks
from bot.core.outbox import BULK, enqueue, make_payload
from bot.core.services import Services
from bot.core.sop import STEP_BUTTONS, step_buttons
from bot.texts import Raw, duration_text, period_label, role_title, t
from bot.core.workcal import format_wib, use_office_zone
from models import (
    Cycle, Delivery, Document, Office, Outbox, Person, ReceiptReminder, Reminder, StepRun, Unit,
)
from models.enums import CycleKind, CycleStatus, DeliveryStatus, Role, StepStatus

SHARE, LASTDAY, DUE, OVERDUE, ESCALATE = "share", "lastday", "due", "overdue", "escalate"
KINDS = (SHARE, LASTDAY, DUE, OVERDUE, ESCALATE)
_RANK = {SHARE: 1, LASTDAY: 2, DUE: 3, OVERDUE: 4, ESCALATE: 4}

DIGEST_ROLES = (Role.KADIS, Role.SEKRETARIS, Role.KASUBAG)
_CHUNK = 500



@dataclass(frozen=True, order=True)
class Point:
    """A reminder point of a run: who gets it, when it fell due."""

    at: datetime
    kind: str
    level: int
    to_superior: bool = False

    @property
    def severity(self) -> tuple[int, int]:
        return (_RANK[self.kind], self.level)


# ----------------------------------------------------------------- working time

class _WorkTime:
    """Working time since an anchor, in O(1) per instant: a cheap, exact measure used
    to rule out runs whose next point is still ahead before asking the calendar.

    ``at(t)`` is monotonic and equals the calendar's working-minute count between two
    instants (``at(b) - at(a) == working_minutes_between(a, b)`` to the microsecond).
    """

    def __init__(self, services: Services) -> None:
        cal = services.calendar
        self.cal = cal
        self.tz = cal.tz
        day = datetime.combine(date(2000, 1, 3), cal.office_end) - datetime.combine(
            date(2000, 1, 3), cal.office_start)
        self.day = day
        self._cum: dict[date, timedelta] = {}
        self._work: dict[date, bool] = {}
        self._open: dict[date, datetime] = {}
        self._lo: date | None = None
        self._hi: date | None = None

    def _is_work(self, d: date) -> bool:
        w = self._work.get(d)
        if w is None:
            w = self._work[d] = self.cal.is_working_day(d)
        return w

    def _before(self, d: date) -> timedelta:
        """Working time from the anchor to the start of day d."""
        cum = self._cum
        if d in cum:
            return cum[d]
        if self._lo is None:
            self._lo = self._hi = d
            cum[d] = timedelta()
            return cum[d]
        one = timedelta(days=1)
        while d > self._hi:
            nxt = self._hi + one
            cum[nxt] = cum[self._hi] + (self.day if self._is_work(self._hi) else timedelta())
            self._hi = nxt
        while d < self._lo:
            prv = self._lo - one
            cum[prv] = cum[self._lo] - (self.day if self._is_work(prv) else timedelta())
            self._lo = prv
        return cum[d]

    def at(self, dt: datetime) -> timedelta:
        local = dt.astimezone(self.tz)
        d = local.date()
        base = self._before(d)
        if not self._is_work(d):
            return base
        opening = self._open.get(d)
        if opening is None:
            opening = self._open[d] = datetime.combine(d, self.cal.office_start, tzinfo=self.tz)
        into = local - opening
        if into <= timedelta():
            return base
        return base + min(into, self.day)


# ----------------------------------------------------------------- planning

@dataclass
class _Plan:
    """What one sweep knows: the clock, the rules and the working-time measure."""

    services: Services
    now: datetime
    office_ids: Sequence[int] | None = None  # the offices of these settings (None: all)
    work: _WorkTime = field(init=False)

    def __post_init__(self) -> None:
        sv = self.services
        self.cfg = sv.config.reminders
        self.cal = sv.calendar
        self.work = _WorkTime(sv)
        self.days_steps = sorted(s.number for s in sv.sop.steps if s.time.unit == "days")
        self.max_days = max((s.time.maximum for s in sv.sop.steps if s.time.unit == "days"),
                            default=0)
        self.interval = self.cfg.escalation_interval_working_days
        self.escalation = {Role(k): Role(v) for k, v in self.cfg.escalation.items()}
        self._now_work = self.work.at(self.now)
        self._memo: dict[tuple, list[Point]] = {}

    def minutes(self, a: datetime, b: datetime) -> int:
        """Working minutes in [a, b) (``WorkCalendar.working_minutes_between``)."""
        return max(0, (self.work.at(b) - self.work.at(a)) // timedelta(minutes=1))

    def candidate_queries(self) -> list:
        """The two index range scans on ``ix_step_run_open_due``.

        Deadline track: every open run whose deadline has passed. Early track: runs in
        days still ahead of their deadline, not beyond the horizon, whose lastday point
        is not recorded (and, once the share point is, only those within the last two
        working days). A step in days lasts at most ``max_days`` working days, so its
        share point lies at most ``(1 - share) * max_days`` working days before the
        deadline, its lastday point at most one; two working days are added for the
        rounding.
        """
        # a run whose deadline or escalation point was recorded less than one interval
        # ago has nothing due before its next point, at least that many calendar days on
        recent = exists().where(
            Reminder.step_run_id == StepRun.id, Reminder.kind.in_([DUE, OVERDUE]),
            Reminder.due_at > self.now - timedelta(days=max(1, self.interval)))
        queries = [_candidates(self.office_ids).where(StepRun.due_at <= self.now, ~recent)]
        if self.days_steps:
            lead = math.ceil((1 - self.cfg.share_of_time) * self.max_days) + 2
            early = _candidates(self.office_ids).where(
                StepRun.due_at > self.now,
                StepRun.due_at <= self.cal.add_working_days(self.now, lead),
                StepRun.step_no.in_(self.days_steps),
                ~_recorded(LASTDAY),
            )
            if self.cfg.last_day_morning:
                early = early.where(or_(~_recorded(SHARE), StepRun.due_at
                                        <= self.cal.add_working_days(self.now, 2)))
            else:
                early = early.where(~_recorded(SHARE))
            queries.append(early)
        return queries

    def lastday(self, row: Any) -> datetime | None:
        point = self.cal.last_working_day_morning(row.due_at)
        return point if point > row.started_at else None

    def points(self, row: Any) -> list[Point]:
        """The points of a candidate run that are due now and not yet recorded."""
        key = (row.id, row.started_at, row.due_at, bool(row.r_share), bool(row.r_lastday),
               bool(row.r_due), row.r_level)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._points(row)
        return found

    def _points(self, row: Any) -> list[Point]:
        now, work, cfg = self.now, self.work, self.cfg
        due = row.due_at
        found: list[Point] = []
        if row.step_no in self.days_steps and not row.r_due and not row.r_lastday:
            # once "due" or "lastday" is recorded every earlier point was settled with it
            due_work = work.at(due)
            last: datetime | None = None
            last_known = False
            if cfg.last_day_morning and due_work - self._now_work <= work.day:
                last, last_known = self.lastday(row), True
                if last is not None and last <= now:
                    found.append(Point(last, LASTDAY, 0))
            if not row.r_share:
                start_work = work.at(row.started_at)
                total = (due_work - start_work) // timedelta(minutes=1)
                target = int(cfg.share_of_time * total)
                if target > 0 and self._now_work - start_work >= timedelta(minutes=target):
                    share = self.cal.add_working_minutes(row.started_at, target)
                    if cfg.last_day_morning and not last_known:
                        last = self.lastday(row)
                    if share <= now and (not cfg.last_day_morning or last is None
                                         or share < last):
                        found.append(Point(share, SHARE, 0))
        if due <= now:
            if not row.r_due:
                found.append(Point(due, DUE, 0))
            if self.interval >= 1:
                level = (row.r_level or 0) + 1
                has_superior = row.role in self.escalation
                due_work = work.at(due)
                point: datetime | None = None
                while True:
                    span = level * self.interval
                    # a point n working days after the deadline is at least n calendar
                    # days and exactly n office days of working time after it
                    if now - due < timedelta(days=span):
                        break
                    if self._now_work - due_work < span * work.day:
                        break
                    # the same clock time each interval: step on from the previous point
                    point = (self.cal.add_working_days(due, span) if point is None
                             else self.cal.add_working_days(point, self.interval))
                    if point > now:
                        break
                    found.append(Point(point, OVERDUE, level))
                    if has_superior:
                        found.append(Point(point, ESCALATE, level, to_superior=True))
                    level += 1
        return found


def _recorded(kind: str):
    return exists().where(Reminder.step_run_id == StepRun.id, Reminder.kind == kind)


def _candidates(office_ids: Sequence[int] | None = None):
    """Open runs with a deadline, with what is recorded for each (index seeks on the
    reminder's unique constraint); of ``office_ids`` only, when given."""
    level = (select(func.max(Reminder.level))
             .where(Reminder.step_run_id == StepRun.id, Reminder.kind == OVERDUE)
             .scalar_subquery())
    stmt = select(
        StepRun.id, StepRun.cycle_id, StepRun.step_no, StepRun.unit_id, StepRun.role,
        StepRun.assignee_id, StepRun.started_at, StepRun.due_at,
        _recorded(SHARE).label("r_share"), _recorded(LASTDAY).label("r_lastday"),
        _recorded(DUE).label("r_due"), level.label("r_level"),
    ).where(StepRun.status == StepStatus.OPEN, StepRun.due_at.is_not(None))
    if office_ids is not None:
        stmt = stmt.where(StepRun.cycle_id.in_(
            select(Cycle.id).where(Cycle.office_id.in_(office_ids))))
    return stmt


def _chunks(ids: Sequence[int], size: int = _CHUNK) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


async def _load(session: AsyncSession, model: Any, ids: Iterable[int | None]) -> dict[int, Any]:
    wanted = sorted({i for i in ids if i is not None})
    found: dict[int, Any] = {}
    for chunk in _chunks(wanted):
        for obj in (await session.execute(select(model).where(model.id.in_(chunk)))).scalars():
            found[obj.id] = obj
    return found


# ----------------------------------------------------------------- texts

class _Composer:
    """What the messages of one sweep need, loaded in bulk before any is written."""

    def __init__(self, session: AsyncSession, services: Services, plan: _Plan) -> None:
        self.s = session
        self.sv = services
        self.plan = plan
        self.cycles: dict[int, Cycle] = {}
        self.people: dict[int, Person] = {}
        self.units: dict[int, Unit] = {}
        self.documents: dict[int, Document] = {}
        self.superiors: dict[tuple[int, Role], Person | None] = {}

    async def load(self, rows: Sequence[Any]) -> None:
        s = self.s
        self.cycles = await _load(s, Cycle, (r.cycle_id for r in rows))
        self.people = await _load(s, Person, (r.assignee_id for r in rows))
        self.units = await _load(s, Unit, (r.unit_id for r in rows))
        doc_cycles = sorted({r.cycle_id for r in rows
                             if STEP_BUTTONS[self.sv.sop.step(r.step_no).kind].on_document})
        for chunk in _chunks(doc_cycles):
            latest = (select(Document.cycle_id, func.max(Document.version).label("v"))
                      .where(Document.cycle_id.in_(chunk)).group_by(Document.cycle_id)
                      .subquery())
            for doc in (await s.execute(select(Document).join(latest, and_(
                    Document.cycle_id == latest.c.cycle_id,
                    Document.version == latest.c.v)))).scalars():
                self.documents[doc.cycle_id] = doc
        wanted = {(self.cycles[r.cycle_id].office_id, self.plan.escalation[r.role])
                  for r in rows if r.role in self.plan.escalation}
        from bot.core.authority import acting_people

        for office_id, role in sorted(wanted):
            acting = await acting_people(s, office_id, (role,), self.plan.now)
            # escalation goes to whoever holds the post now: the Plh./Plt. if there is one
            self.superiors[(office_id, role)] = acting[0] if acting else (await s.execute(
                select(Person).where(Person.office_id == office_id, Person.role == role,
                                     Person.active.is_(True)).order_by(Person.id)
            )).scalars().first()
        # accounts bound in several offices: their messages name the office
        accounts = sorted({p.telegram_user_id for p in [*self.people.values(),
                                                         *self.superiors.values()]
                           if p is not None and p.telegram_user_id is not None})
        self.several: set[int] = set()
        for chunk in _chunks(accounts):
            self.several.update((await s.execute(
                select(Person.telegram_user_id).where(Person.telegram_user_id.in_(chunk))
                .group_by(Person.telegram_user_id).having(func.count() > 1))).scalars())
        self.offices = await _load(s, Office, (c.office_id for c in self.cycles.values())) \
            if self.several else {}

    def heading(self, person: Person | None, row: Any) -> str:
        """"🏢 <office>" and a new line, for an account bound in several offices."""
        if person is None or person.telegram_user_id not in self.several:
            return ""
        office = self.offices.get(self.cycles[row.cycle_id].office_id)
        return t("n.office_head", office=office.name) + "\n" if office else ""

    def superior_of(self, row: Any) -> Person | None:
        role = self.plan.escalation.get(row.role)
        if role is None:
            return None
        boss = self.superiors.get((self.cycles[row.cycle_id].office_id, role))
        if boss is not None and boss.id == row.assignee_id:
            return None
        return boss

    def late(self, due: datetime) -> str:
        return duration_text(self.plan.minutes(due, self.plan.now), self.sv.day_minutes)

    def where(self, row: Any) -> str:
        cycle = self.cycles[row.cycle_id]
        text = period_label(cycle.kind, cycle.year, cycle.quarter)
        unit = self.units.get(row.unit_id) if row.unit_id is not None else None
        if unit is not None:
            text += f", {unit.name}"
        return text

    def buttons(self, row: Any) -> list[list[tuple[str, str]]]:
        doc = self.documents.get(row.cycle_id)
        return step_buttons(self.sv.sop.step(row.step_no).kind, row.id, doc.id if doc else None)

    def holder_text(self, row: Any, point: Point, superior: Person | None) -> str:
        step = self.sv.sop.step(row.step_no)
        common = dict(step=step.number, activity=step.activity, where=self.where(row),
                      due=format_wib(row.due_at))
        if point.kind == SHARE:
            left = self.plan.minutes(self.plan.now, row.due_at)
            return t("r.share", percent=f"{round(self.sv.config.reminders.share_of_time * 100)}%",
                     left=duration_text(left, self.sv.day_minutes), **common)
        if point.kind == LASTDAY:
            return t("r.lastday", **common)
        if point.kind == DUE:
            return t("r.due", **common)
        reported = (Raw(t("r.overdue_reported", title=role_title(superior.role),
                          name=superior.name)) if superior is not None else "")
        return t("r.overdue", late=self.late(row.due_at), reported=reported, **common)

    def superior_text(self, row: Any, holder: Person | None) -> str:
        step = self.sv.sop.step(row.step_no)
        return t("r.escalate", step=step.number, activity=step.activity, where=self.where(row),
                 due=format_wib(row.due_at), late=self.late(row.due_at),
                 holder=holder.name if holder else "-", role=role_title(row.role))


# ----------------------------------------------------------------- offices

async def office_groups(session: AsyncSession, services: Services
                        ) -> list[tuple[Services, list[int] | None]]:
    """The offices by their settings: each group's services (its calendar, time zone,
    reminder rules, SOP) and its office ids; one group of all offices (ids None: no
    filter) when every office works with the same settings."""
    offices = (await session.execute(select(Office).order_by(Office.id))).scalars().all()
    groups: dict[str, tuple[Services, list[int]]] = {}
    for office in offices:
        key = json.dumps(office.settings or {}, sort_keys=True, default=str)
        if key not in groups:
            groups[key] = (services.for_office(office), [])
        groups[key][1].append(office.id)
    if len(groups) <= 1:
        view = next(iter(groups.values()))[0] if groups else services
        return [(replace(view, office_id=None), None)]
    return [(view, ids) for view, ids in groups.values()]


# ----------------------------------------------------------------- the sweep

async def sweep(session: AsyncSession, services: Services) -> list[Reminder]:
    """Record and queue every reminder point that is due now, each office by its own
    calendar, zone and rules; returns the new rows.

    The caller commits (``async with session.begin()``).
    """
    made: list[Reminder] = []
    for view, office_ids in await office_groups(session, services):
        use_office_zone(view.calendar.tz)
        made += await _sweep(session, view, office_ids)
    use_office_zone(None)
    return sorted(made, key=lambda r: r.id)


async def _sweep(session: AsyncSession, services: Services,
                 office_ids: list[int] | None) -> list[Reminder]:
    now = services.clock.now()
    cfg = services.config.reminders
    if cfg.office_hours_only and not services.calendar.is_office_open(now):
        return []
    plan = _Plan(services, now, office_ids)
    due_ids: set[int] = set()
    for query in plan.candidate_queries():
        due_ids.update(row.id for row in (await session.execute(query)).all()
                       if plan.points(row))
    if not due_ids:
        return []
    # claim the runs (PostgreSQL: a run another process is reminding is skipped) ...
    claimed: list[int] = []
    for chunk in _chunks(sorted(due_ids)):
        claimed += (await session.execute(
            select(StepRun.id).where(StepRun.id.in_(chunk), StepRun.status == StepStatus.OPEN)
            .with_for_update(skip_locked=True)
        )).scalars().all()
    # ... and read what is recorded again, now that nobody else can add to it
    work: list[tuple[Any, list[Point]]] = []
    for chunk in _chunks(sorted(claimed)):
        for row in (await session.execute(_candidates().where(StepRun.id.in_(chunk)))).all():
            points = plan.points(row)
            if points:
                work.append((row, points))
    return await _record(session, services, plan, work)


async def _record(session: AsyncSession, services: Services, plan: _Plan,
                  work: list[tuple[Any, list[Point]]]) -> list[Reminder]:
    """Queue one message per person and run, then record every point, in bulk (a
    catch-up after a long outage can be thousands of rows)."""
    if not work:
        return []
    now = plan.now
    composer = _Composer(session, services, plan)
    await composer.load([row for row, _ in work])
    messages: list[dict] = []
    records: list[tuple[dict, int | None]] = []  # (reminder values, message index)
    for row, points in sorted(work, key=lambda w: w[0].id):
        holder = composer.people.get(row.assignee_id) if row.assignee_id else None
        superior = composer.superior_of(row)
        own = sorted(p for p in points if not p.to_superior)
        up = sorted(p for p in points if p.to_superior)
        for group, person, text_of, buttons in (
            (own, holder, lambda w: composer.holder_text(row, w, superior if up else None),
             lambda: composer.buttons(row)),
            (up, superior, lambda w: composer.superior_text(row, holder), lambda: None),
        ):
            if not group:
                continue
            index = None
            if person is not None:
                worst = max(group, key=lambda p: p.severity)
                index = len(messages)
                kind = "reminder:escalate" if worst.to_superior else f"reminder:{worst.kind}"
                messages.append(dict(
                    person_id=person.id, chat_id=person.telegram_user_id, kind=kind,
                    payload=make_payload(composer.heading(person, row) + text_of(worst),
                                         buttons()),
                    created_at=now, next_attempt_at=now, priority=BULK, ref=f"run:{row.id}"))
            for p in group:
                records.append((dict(step_run_id=row.id, kind=p.kind, level=p.level,
                                     due_at=p.at, sent_at=now,
                                     person_id=person.id if person else None), index))
    ids: list[int] = []
    for chunk in _chunks(messages):
        ids += (await session.execute(
            insert(Outbox).returning(Outbox.id, sort_by_parameter_order=True), list(chunk)
        )).scalars().all()
    values = [dict(v, outbox_id=ids[i] if i is not None else None) for v, i in records]
    for chunk in _chunks(values, 5000):
        await session.execute(insert(Reminder), list(chunk))
    run_ids = sorted({row.id for row, _ in work})
    made: list[Reminder] = []
    for chunk in _chunks(run_ids):
        made += (await session.execute(
            select(Reminder).where(Reminder.step_run_id.in_(chunk), Reminder.sent_at == now)
        )).scalars().all()
    return sorted(made, key=lambda r: r.id)


# ----------------------------------------------------------------- receipts

async def receipt_sweep(session: AsyncSession, services: Services) -> list[ReceiptReminder]:
    """Remind the contact of each agency whose receipt is still awaited (see the module
    docstring), each office by its own calendar and settings; returns the new rows. The
    caller commits."""
    made: list[ReceiptReminder] = []
    for view, office_ids in await office_groups(session, services):
        use_office_zone(view.calendar.tz)
        made += await _receipt_sweep(session, view, office_ids)
    use_office_zone(None)
    return made


async def _receipt_sweep(session: AsyncSession, services: Services,
                         office_ids: list[int] | None) -> list[ReceiptReminder]:
    now = services.clock.now()
    cal = services.calendar
    cfg = services.config.delivery
    if services.config.reminders.office_hours_only and not cal.is_office_open(now):
        return []
    if cfg.receipt_reminder_max < 1:
        return []
    first = now - timedelta(days=cfg.receipt_reminder_days)  # n working days >= n days
    level = (select(func.max(ReceiptReminder.level))
             .where(ReceiptReminder.delivery_id == Delivery.id).scalar_subquery())
    stmt = (select(Delivery, level.label("done"))
            .join(Cycle, Cycle.id == Delivery.cycle_id)
            .where(Delivery.status == DeliveryStatus.SENT, Delivery.sent_at <= first,
                   Delivery.contact_person_id.is_not(None), Cycle.status == CycleStatus.ACTIVE))
    if office_ids is not None:
        stmt = stmt.where(Cycle.office_id.in_(office_ids))
    rows = (await session.execute(
        stmt.order_by(Delivery.id).with_for_update(of=Delivery, skip_locked=True))).all()
    made: list[ReceiptReminder] = []
    for delivery, done in rows:
        done = done or 0
        points: list[tuple[int, datetime]] = []
        for n in range(done + 1, cfg.receipt_reminder_max + 1):
            point = cal.add_working_days(delivery.sent_at, n * cfg.receipt_reminder_days)
            if point > now:
                break
            points.append((n, point))
        if not points:
            continue
        contact = await session.get(Person, delivery.contact_person_id)
        cycle = await session.get(Cycle, delivery.cycle_id)
        office = await session.get(Office, cycle.office_id)
        outbox_id = None
        if contact is not None and contact.active:
            n, _ = points[-1]
            text = t("r.receipt", agency=delivery.agency_name, office=office.name,
                     period=period_label(cycle.kind, cycle.year, cycle.quarter),
                     sent=format_wib(delivery.sent_at), n=n)
            row = await enqueue(session, contact, f"receipt_reminder:{delivery.id}:{n}", text,
                                [[(t("b.confirm_receipt"), callbacks.encode("rcv", delivery.id))]],
                                at=now)
            await session.flush()
            outbox_id = row.id
        for n, at in points:
            reminder = ReceiptReminder(delivery_id=delivery.id, level=n, due_at=at, sent_at=now,
                                       person_id=contact.id if contact else None,
                                       outbox_id=outbox_id)
            session.add(reminder)
            made.append(reminder)
        sender = (await session.get(Person, delivery.recorded_by_id)
                  if delivery.recorded_by_id else None)
        if points[-1][0] == cfg.receipt_reminder_max and sender is not None and sender.active:
            # the last reminder: the one who sent it may record a paper receipt instead
            # (information with a button, not a late notice; nobody above is told)
            from bot.render import button_text

            await enqueue(session, sender, f"receipt_unconfirmed:{delivery.id}",
                          t("r.receipt_unconfirmed", agency=delivery.agency_name,
                            contact=contact.name if contact else "-",
                            n=cfg.receipt_reminder_max),
                          [[(button_text("b.record_receipt", agency=delivery.agency_name),
                             callbacks.encode("dlv", delivery.id))]], at=now)
    await session.flush()
    return made


async def _receipt_lines(session: AsyncSession, cycle: Cycle) -> list[str]:
    """The digest's lines for the receipts still awaited: the agencies' time, apart from
    the steps (never counted late)."""
    waiting = (await session.execute(
        select(Delivery).where(Delivery.cycle_id == cycle.id,
                               Delivery.status == DeliveryStatus.SENT)
        .order_by(Delivery.id))).scalars().all()
    lines = []
    for d in waiting:
        reminded = (await session.execute(
            select(func.count()).select_from(ReceiptReminder)
            .where(ReceiptReminder.delivery_id == d.id))).scalar_one()
        lines.append(t("r.digest_receipt", agency=d.agency_name,
                       sent=format_wib(d.sent_at) if d.sent_at else "-", reminded=reminded))
    return lines


# ----------------------------------------------------------------- the digest

async def _claim_people(session: AsyncSession, office_id: int, roles: Sequence[Role],
                        at: datetime) -> list[Person]:
    """The active people of these roles, and whoever acts for them (Plh./Plt.) at ``at``,
    locked (skipping those another process holds)."""
    from bot.core.authority import acting_people

    people = list((await session.execute(
        select(Person).where(Person.office_id == office_id, Person.role.in_(roles),
                             Person.active.is_(True))
        .order_by(Person.id).with_for_update(skip_locked=True)
    )).scalars())
    for person in await acting_people(session, office_id, roles, at):
        if person not in people and person.active:
            people.append(person)
    return people


async def _already_sent(session: AsyncSession, person: Person, kind: str) -> bool:
    return (await session.execute(
        select(Outbox.id).where(Outbox.person_id == person.id, Outbox.kind == kind).limit(1)
    )).first() is not None


async def _each_office(session: AsyncSession, services: Services, job) -> int:
    """``job(session, office_services, office)`` for every office, in its own time zone;
    the sum of what each queued."""
    sent = 0
    offices = (await session.execute(select(Office).order_by(Office.id))).scalars().all()
    for office in offices:
        view = services.for_office(office)
        use_office_zone(view.calendar.tz)
        sent += await job(session, view, office)
    use_office_zone(None)
    await session.flush()
    return sent


async def daily_digest(session: AsyncSession, services: Services) -> int:
    """Once per working day, while the office is open (each office by its own calendar):
    each active cycle, its open steps, who holds them and who is late, to the Kadis,
    Sekretaris and Kasubag.

    Returns the number of messages queued (0 when no cycle is active).
    """
    return await _each_office(session, services, _office_digest)


async def _office_digest(session: AsyncSession, services: Services, office: Office) -> int:
    from reports.numbers import format_date_long

    cfg = services.config.reminders
    now = services.clock.now()
    cal = services.calendar
    if not cfg.digest_enabled or not cal.is_office_open(now):
        return 0
    today = now.astimezone(cal.tz).date()
    kind = f"digest:{today.isoformat()}"
    plan = _Plan(services, now, [office.id])
    sent = 0
    cycles = (await session.execute(
        select(Cycle).where(Cycle.office_id == office.id, Cycle.status == CycleStatus.ACTIVE)
        .order_by(Cycle.kind, Cycle.year, Cycle.quarter, Cycle.id)
    )).scalars().all()
    if not cycles:
        return sent
    people = [p for p in await _claim_people(session, office.id, DIGEST_ROLES, now)
              if not await _already_sent(session, p, kind)]
    if not people:
        return sent
    lines = [t("r.digest_head", date=format_date_long(today))]
    late_count = total = 0
    for cycle in cycles:
        lines.append(t("r.digest_cycle", period=period_label(cycle.kind, cycle.year,
                                                             cycle.quarter)))
        runs = (await session.execute(
            select(StepRun).where(StepRun.cycle_id == cycle.id,
                                  StepRun.status == StepStatus.OPEN)
            .order_by(StepRun.step_no, StepRun.unit_id, StepRun.id)
        )).scalars().all()
        receipts = await _receipt_lines(session, cycle)
        if not runs and not receipts:
            lines.append(t("r.digest_no_open"))
        lines += receipts
        for run in runs:
            total += 1
            holder = await session.get(Person, run.assignee_id) if run.assignee_id else None
            unit = await session.get(Unit, run.unit_id) if run.unit_id else None
            params = dict(step=run.step_no,
                          activity=services.sop.step(run.step_no).output,
                          unit=f" ({unit.name})" if unit else "",
                          holder=holder.name if holder else "-",
                          due=format_wib(run.due_at) if run.due_at else "-")
            if run.due_at is not None and run.due_at <= now:
                late_count += 1
                late = duration_text(plan.minutes(run.due_at, now), services.day_minutes)
                lines.append(t("r.digest_late", late=late, **params))
            else:
                lines.append(t("r.digest_line", **params))
    lines.append(t("r.digest_summary", late=late_count, total=total))
    text = "\n".join(lines)
    from bot.core.onboarding import office_heading

    for person in people:
        head = await office_heading(session, person)  # an account in several offices
        await enqueue(session, person, kind, f"{head}\n{text}" if head else text, None,
                      at=now, priority=BULK)
        sent += 1
    return sent


# ----------------------------------------------------------------- the quarterly prompt

def _periods_ending_before(today: date) -> tuple[date, list[tuple[CycleKind, int, int]]]:
    """The last quarter end before today and the periods it closes."""
    first_of_quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    end = first_of_quarter - timedelta(days=1)
    quarter = (end.month - 1) // 3 + 1
    periods = [(CycleKind.QUARTERLY, end.year, quarter)]
    if quarter == 4:
        periods.append((CycleKind.ANNUAL, end.year, 0))
    return end, periods


async def quarterly_prompt(session: AsyncSession, services: Services) -> int:
    """Ask the Kadis whether to start the cycle of a period that has just ended.

    From the first working day after a quarter ends (while the office is open, each
    office by its own calendar) until the end of that month; once per period; never for
    a period that has a cycle. Returns the number of prompts queued.
    """
    return await _each_office(session, services, _office_prompt)


async def _office_prompt(session: AsyncSession, services: Services, office: Office) -> int:
    cfg = services.config.reminders
    now = services.clock.now()
    cal = services.calendar
    if not cfg.quarterly_prompt or not cal.is_office_open(now):
        return 0
    today = now.astimezone(cal.tz).date()
    end, periods = _periods_ending_before(today)
    if today.month != end.month % 12 + 1 or today < cal.first_working_day_after(end):
        return 0
    sent = 0
    heads = await _claim_people(session, office.id, (Role.KADIS,), now)
    for head, (kind, year, quarter) in [(h, p) for p in periods for h in heads]:
        started = (await session.execute(
            select(Cycle.id).where(Cycle.office_id == office.id, Cycle.kind == kind,
                                   Cycle.year == year, Cycle.quarter == quarter)
        )).first()
        if started is not None:
            continue
        key = f"prompt:{kind.value}:{year}:{quarter}"
        if await _already_sent(session, head, key):
            continue
        period = period_label(kind, year, quarter)
        code = 1 if kind == CycleKind.QUARTERLY else 2
        await enqueue(session, head, key, t("r.prompt", period=period),
                      [[(t("r.b_start", period=period),
                         callbacks.encode("start", code, year, quarter))]], at=now,
                      priority=BULK,
                      ref=f"start:{code}:{year}:{quarter}")  # gone once started
        sent += 1
    return sent


__all__ = [
    "DUE", "ESCALATE", "KINDS", "LASTDAY", "OVERDUE", "SHARE", "Point", "daily_digest",
    "quarterly_prompt", "receipt_sweep", "sweep",
]
