"""Data entry (step 4) in the core: the entry of one person on one bidang's run, the
previous period's realisation, the evidence of an answer, the bidang's staf, and the
staf's "Selesai". ``handlers/data_entry.py`` parses and renders; the rules are here
and in :mod:`bot.core.entry_rules`. No Telegram here.
"""
from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import and_, bindparam, case, exists, func, or_, select

from bot.core import audit
from bot.core.outbox import enqueue
from bot.core.workflow import NotAllowed, NotFound, StaleAction, Workflow, WrongState
from bot.texts import period_label, t
from models import (
    Cycle, CycleIndicator, Evidence, Indicator, ItemToken, Person, StepRun, Submission, Unit,
)
from models.enums import CycleKind, Role, StepStatus
from models.session import core_objects, core_rows


# An indicator, and a bidang's item (the indicator asked in the cycle), as the data entry
# reads them: their columns, read-only. Built from one row per item, not as ORM objects:
# 80 of those on every typed answer and press were about half of the update's database
# CPU. What the data entry changes goes through the workflow, which loads what it
# changes (``Workflow.record_answer``, ``Workflow.assign_item``); the one change the entry
# itself reads back, an item handed to a staf, is applied to its view (``Entry.assigned``).
IndicatorView = namedtuple("IndicatorView", [c.name for c in Indicator.__table__.c])
ItemView = namedtuple("ItemView", [c.name for c in CycleIndicator.__table__.c])
_ITEM_COLUMNS = len(ItemView._fields)


@dataclass
class Entry:
    """The run being filled in, as seen by one person."""

    person: Person
    run: StepRun
    cycle: Cycle
    unit: Unit
    items: list[ItemView]
    indicators: Mapping[int, IndicatorView] = field(default_factory=dict)
    evidence: dict[int, int] = field(default_factory=dict)  # submission id -> files, when known
    # the single answers the Kasubag sent back (cycle indicator id -> ReturnedAnswer)
    returned: dict = field(default_factory=dict)

    @property
    def is_kabid(self) -> bool:
        """The holder of the run: the Kabid, a Plh., or whoever it was moved to."""
        return self.person.id == self.run.assignee_id

    def ind(self, item: ItemView) -> IndicatorView:
        return self.indicators[item.indicator_id]

    def position(self, item: ItemView) -> int:
        return [i.id for i in self.items].index(item.id)

    def item(self, item_id: int | None) -> ItemView | None:
        return next((i for i in self.items if i.id == item_id), None)

    def assigned(self, item_id: int, staff_id: int | None) -> ItemView | None:
        """The item handed to ``staff_id`` (None: back to the holder), as the workflow
        just wrote it: its view here says so too."""
        for n, i in enumerate(self.items):
            if i.id == item_id:
                self.items[n] = i._replace(assigned_to_id=staff_id)
                return self.items[n]
        return None


# built once (every typed answer and press runs them): construction and cache key
# cost more CPU than the statements themselves. Two statements, not one join: joined,
# the run, cycle and bidang came back on every indicator's row, and the ORM handled
# them 40 times over for a bidang of 40 (about 0.7 ms of CPU per update)
_TOKEN = ItemToken.__table__
_RUN = (select(StepRun.__table__, Cycle.__table__, Unit.__table__,  # core_objects
               _TOKEN.c.token)  # the token of the cycle's items, as the database has it
        .join(Cycle.__table__, Cycle.__table__.c.id == StepRun.__table__.c.cycle_id)
        .join(Unit.__table__, Unit.__table__.c.id == StepRun.__table__.c.unit_id)
        .outerjoin(_TOKEN, _TOKEN.c.cycle_id == StepRun.__table__.c.cycle_id)
        .where(StepRun.__table__.c.id == bindparam("run_id")))
_CI, _IND = CycleIndicator.__table__, Indicator.__table__
_ITEMS = (select(_CI, _IND)
          .join(_IND, _IND.c.id == _CI.c.indicator_id)
          .where(_CI.c.cycle_id == bindparam("cycle_id"), _CI.c.unit_id == bindparam("unit_id"))
          .order_by(_CI.c.position))
_SUB, _CYC = Submission.__table__, Cycle.__table__
# the latest answer of an indicator in a cycle and in the office's cycles of the periods
# before it (:func:`previous_cycle_keys`, at most two), in one statement: a card reads
# both, the previous realisation first. Each row's slot: 0 the cycle's own, 1 and 2 the
# periods in order
_NEWER = _SUB.alias("newer")


def _period(n: int):
    return and_(_CYC.c.kind == bindparam(f"kind{n}"), _CYC.c.year == bindparam(f"year{n}"),
                _CYC.c.quarter == bindparam(f"quarter{n}"))


_ANSWERS_AROUND = (
    select(_SUB, case((_CYC.c.id == bindparam("cycle_id"), 0), (_period(1), 1), else_=2))
    .join(_CYC, _CYC.c.id == _SUB.c.cycle_id)  # core_objects, the slot after the row
    .where(_SUB.c.indicator_id == bindparam("indicator_id"),
           _CYC.c.office_id == bindparam("office_id"),
           or_(_CYC.c.id == bindparam("cycle_id"), _period(1), _period(2)),
           ~exists().where(_NEWER.c.cycle_id == _SUB.c.cycle_id,
                           _NEWER.c.indicator_id == _SUB.c.indicator_id,
                           _NEWER.c.revision > _SUB.c.revision)))


async def load_entry(wf: Workflow, person: Person, run_id: int | None) -> Entry:
    """The open step-4 run of the person's bidang, with the indicators they fill in."""
    if not isinstance(run_id, int):
        raise StaleAction()
    rows = await core_objects(wf.s, _RUN, {"run_id": run_id}, StepRun, Cycle, Unit)
    if not rows:
        raise NotFound()
    run, cycle, unit, token = rows[0]
    step = wf.sop.step(run.step_no)
    if step.kind != "collect" or run.status != StepStatus.OPEN:
        raise StaleAction()
    holder = person.active and person.id == run.assignee_id
    if not holder and (not person.active or person.unit_id != run.unit_id
                       or person.role != Role.STAF):
        raise NotAllowed(t("err.not_assignee")) if person.role == Role.KABID else NotAllowed()
    bidang = await _bidang(wf.s, run, token)
    items = list(bidang.items)
    # only the answers the Kasubag sent back, when a return of single answers opened
    # this round; the rest stays as it was sent
    returned = await wf.returned_answers(run) if run.round > 1 else {}
    if returned:
        items = [i for i in items if i.id in returned]
    if not holder:
        items = [i for i in items if i.assigned_to_id == person.id]
    entry = Entry(person, run, cycle, unit, items, returned=returned)
    entry.indicators = bidang.indicators
    return entry


class _Bidang:
    """A bidang's items of a cycle and their indicators, as read at one token of the
    cycle's items (:class:`models.ItemToken`); read-only (views are tuples), shared by
    the updates of this process while the token stays the same."""

    __slots__ = ("token", "items", "indicators")

    def __init__(self, token: str | None, rows) -> None:
        self.token = token
        item_of, n = ItemView._make, _ITEM_COLUMNS
        self.items = tuple(item_of(r[:n]) for r in rows)
        self.indicators = _Indicators(rows)


# (database, cycle id, unit id) -> the bidang's items as last read in this process. A
# bidang of 40 read and made into views at every typed answer and press was about an
# eighth of the update's CPU; they change only while the cycle is set up or an item is
# handed to a staf
_BIDANGS: dict[tuple, _Bidang] = {}
_BIDANGS_LIMIT = 1024  # bidangs of all cycles of all offices a process serves


async def _bidang(session, run: StepRun, token: str | None) -> _Bidang:
    """The bidang's items of ``run``'s cycle: those kept in this process if they were
    read at ``token`` (the cycle's token read in this transaction), else read now. A
    change of the items in this transaction or committed by any process before it
    wrote a new token (the database's triggers), so kept items read at another token
    are never used; items read in a transaction that is rolled back later are kept at
    a token that never comes back."""
    key = (session.bind.url, run.cycle_id, run.unit_id)
    kept = _BIDANGS.get(key)
    if kept is not None and kept.token == token:
        return kept
    rows = await core_rows(session, _ITEMS, {"cycle_id": run.cycle_id, "unit_id": run.unit_id})
    if len(_BIDANGS) >= _BIDANGS_LIMIT:
        _BIDANGS.clear()
    kept = _BIDANGS[key] = _Bidang(token, rows)
    return kept


class _Indicators(Mapping):
    """The bidang's indicators by id, each view made when first asked for (a card shows
    one; a summary all): making all 40 for every update cost more than reading them."""

    __slots__ = ("_rows", "_views")

    def __init__(self, rows) -> None:
        self._rows = {r[_ITEM_COLUMNS]: r for r in rows}
        self._views: dict[int, IndicatorView] = {}

    def __getitem__(self, indicator_id: int) -> IndicatorView:
        view = self._views.get(indicator_id)
        if view is None:
            view = self._views[indicator_id] = IndicatorView._make(
                self._rows[indicator_id][_ITEM_COLUMNS:])
        return view

    def __iter__(self):
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def previous_cycle_keys(cycle: Cycle) -> list[tuple[CycleKind, int, int]]:
    """The cycle whose realisation is "last period's": the previous quarter (for Q1 the
    previous year's Q4, else its annual report), or the previous year."""
    if cycle.kind == CycleKind.QUARTERLY:
        if cycle.quarter > 1:
            return [(CycleKind.QUARTERLY, cycle.year, cycle.quarter - 1)]
        return [(CycleKind.QUARTERLY, cycle.year - 1, 4), (CycleKind.ANNUAL, cycle.year - 1, 0)]
    return [(CycleKind.ANNUAL, cycle.year - 1, 0)]


async def previous_realisation(wf: Workflow, cycle: Cycle, ind: Indicator
                               ) -> tuple[str, Submission] | None:
    """The indicator's answer in the period before ``cycle``'s (the first of
    :func:`previous_cycle_keys` with a value), with its period's label. The same
    statement reads the indicator's latest answer in ``cycle``, kept for
    :meth:`Workflow.latest_submission` (the card shows it next)."""
    keys = previous_cycle_keys(cycle)
    params = {"cycle_id": cycle.id, "office_id": cycle.office_id, "indicator_id": ind.id}
    for n, (kind, year, quarter) in enumerate((keys + keys)[:2], 1):
        params.update({f"kind{n}": kind, f"year{n}": year, f"quarter{n}": quarter})
    found = {slot: sub for sub, slot in await core_objects(wf.s, _ANSWERS_AROUND, params,
                                                           Submission)}
    wf.keep_latest(cycle.id, ind.id, found.get(0))
    for n, (kind, year, quarter) in enumerate(keys, 1):
        sub = found.get(n)
        if sub is not None and not sub.skipped and (sub.value is not None or sub.value_text):
            return period_label(kind, year, quarter), sub
    return None


async def evidence_ids(session, sub: Submission | None) -> list[int]:
    if sub is None:
        return []
    return list((await session.execute(
        select(Evidence.file_id).where(Evidence.submission_id == sub.id).order_by(Evidence.id)
    )).scalars())


_EVIDENCE_COUNTS = (select(Evidence.submission_id, func.count())
                    .where(Evidence.submission_id.in_(bindparam("ids", expanding=True)))
                    .group_by(Evidence.submission_id))


async def evidence_counts(session, subs) -> dict[int, int]:
    """The number of files of each of ``subs`` (submissions or None), by submission id,
    in one statement."""
    ids = sorted({sub.id for sub in subs if sub is not None})
    counts = dict.fromkeys(ids, 0)
    if ids:
        counts.update(await core_rows(session, _EVIDENCE_COUNTS, {"ids": ids}))
    return counts


async def evidence_count(session, sub: Submission | None) -> int:
    return 0 if sub is None else (await evidence_counts(session, [sub]))[sub.id]


async def staff_of(wf: Workflow, unit_id: int) -> list[Person]:
    return list((await wf.s.execute(select(Person).where(
        Person.unit_id == unit_id, Person.role == Role.STAF, Person.active.is_(True))
        .order_by(Person.id))).scalars())


async def staff_done(wf: Workflow, entry: Entry, buttons) -> None:
    """A staf finished the indicators handed to them: every one answered, else refused;
    the Kabid is told (with ``buttons``) and the audit records it."""
    if entry.is_kabid:
        raise NotAllowed()
    latest = await wf.latest_submissions(entry.cycle.id, [i.indicator_id for i in entry.items])
    missing = [i for i in entry.items if latest[i.indicator_id] is None]
    if missing:
        raise WrongState(t("err.answers_missing", count=len(missing)))
    kabid = await wf.s.get(Person, entry.run.assignee_id)
    period = period_label(entry.cycle.kind, entry.cycle.year, entry.cycle.quarter)
    await enqueue(wf.s, kabid, "staff_done",
                  t("e.staff_done_notify", name=entry.person.name, count=len(entry.items),
                    unit=entry.unit.name, period=period), buttons, at=wf.now,
                  ref=f"run:{entry.run.id}")  # not sent once the Kabid has sent the data
    await wf.retire(f"run:{entry.run.id}:p{entry.person.id}")  # the staf's assignment card
    await audit.record(wf.s, "data.staff_done", actor_id=entry.person.id,
                       cycle_id=entry.cycle.id, at=wf.now, run=entry.run.id,
                       count=len(entry.items))
