"""Quarterly figures of a cycle's indicators: the quarter's own realisation and the
"s.d. triwulan" realisation, built from the earlier quarters' cycles of the same year
with :func:`reports.measure.period_figures` (issue 15).

Everything is loaded in a fixed number of queries (the earlier cycles' submissions,
the quarterly targets), whatever the number of indicators.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Cycle, Indicator, Submission, Target
from models.enums import CycleKind, CycleStatus, ValueType
from models.indicators import aggregation_of
from models.session import core_rows
from reports.measure import PeriodFigures, period_figures, period_realisation

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


@dataclass(frozen=True)
class QuarterHistory:
    """Per indicator id: the figure entered in each earlier quarter of the year and the
    quarterly ("s.d.") targets of the year."""

    quarter: int
    entered: Mapping[int, Mapping[int, Decimal | None]]
    targets: Mapping[int, Mapping[int, Decimal | None]]

    def figures(self, indicator: Indicator, current: Decimal | None,
                target: Decimal | None) -> PeriodFigures:
        """The figures of ``indicator`` with this quarter's entered value ``current`` and
        the cycle's target ``target`` (the "s.d." target of this quarter)."""
        entered = dict(self.entered.get(indicator.id, {}))
        entered[self.quarter] = current
        targets = dict(self.targets.get(indicator.id, {}))
        targets[self.quarter] = target
        return period_figures(entered, targets, self.quarter,
                              aggregation=aggregation_of(indicator),
                              cumulative=indicator.cumulative)


def splits(cycle: Cycle, indicator: Indicator) -> bool:
    """True when the indicator of this cycle has a quarter and an "s.d." figure."""
    return (cycle.kind == CycleKind.QUARTERLY and bool(cycle.quarter)
            and indicator.value_type != ValueType.TEXT)


# built once: the card of every numeric question of a quarterly cycle from TW II runs
# them, and building a statement and its cache key costs more than running it
_EARLIER_ENTERED = (
    select(Cycle.quarter, Submission.indicator_id, Submission.value, Submission.skipped)
    .join(Submission, Submission.cycle_id == Cycle.id)
    .where(Cycle.office_id == bindparam("office_id"), Cycle.kind == CycleKind.QUARTERLY,
           Cycle.year == bindparam("year"), Cycle.quarter < bindparam("quarter"),
           Cycle.status != CycleStatus.CANCELLED,
           Submission.indicator_id.in_(bindparam("ids", expanding=True)))
    .order_by(Submission.revision))
_QUARTER_TARGETS = (
    select(Target.indicator_id, Target.period, Target.value)
    .where(Target.indicator_id.in_(bindparam("ids", expanding=True)),
           Target.year == bindparam("year"), Target.period.between(1, 4)))


async def quarter_history(session: AsyncSession, cycle: Cycle,
                          indicator_ids: Iterable[int], *,
                          targets: bool = True) -> QuarterHistory:
    """Earlier quarters' entered figures and (unless ``targets`` is false) the year's
    quarterly targets, in two queries. A skipped or missing answer is None (never 0);
    a cancelled cycle counts as missing."""
    ids = sorted(set(indicator_ids))
    entered: dict[int, dict[int, Decimal | None]] = {}
    by_period: dict[int, dict[int, Decimal | None]] = {}
    if cycle.kind != CycleKind.QUARTERLY or not cycle.quarter or not ids:
        return QuarterHistory(cycle.quarter or 0, entered, by_period)
    # ordered by revision: the last one written wins
    for quarter, indicator_id, value, skipped in await core_rows(session, _EARLIER_ENTERED, {
            "office_id": cycle.office_id, "year": cycle.year, "quarter": cycle.quarter,
            "ids": ids}):
        entered.setdefault(indicator_id, {})[quarter] = None if skipped else value
    if targets:
        for indicator_id, period, value in (await session.execute(_QUARTER_TARGETS, {
                "ids": ids, "year": cycle.year})).all():
            by_period.setdefault(indicator_id, {})[period] = value
    return QuarterHistory(cycle.quarter, entered, by_period)


async def entry_lines(session: AsyncSession, cycle: Cycle, indicator: Indicator,
                      show: Callable[[Decimal], str]) -> list[str]:
    """What the data-entry card says to type for a numeric indicator, after the running
    "s.d." figure of the earlier quarters (quarterly cycles, from quarter II)."""
    from bot.texts import QUARTER_NAMES, t

    if not splits(cycle, indicator):
        return [t("e.ask_number")]
    aggregation = aggregation_of(indicator)
    quarter = QUARTER_NAMES[cycle.quarter]
    ask = t("e.ask_quarter_sd" if aggregation == "last" else "e.ask_quarter_own",
            quarter=quarter)
    if cycle.quarter == 1:
        return [ask]
    history = await quarter_history(session, cycle, [indicator.id], targets=False)
    entered = history.entered.get(indicator.id, {})
    prev_q = cycle.quarter - 1
    prev = QUARTER_NAMES[prev_q]
    if aggregation == "last":
        value = entered.get(prev_q)
    else:
        value = period_realisation(entered, prev_q, cumulative=False, aggregation=aggregation)
    if value is None:
        missing = next((q for q in range(1, cycle.quarter) if entered.get(q) is None), prev_q)
        return [t("e.running_missing", prev=QUARTER_NAMES[missing], quarter=quarter), ask]
    return [t(f"e.running_{aggregation}", prev=prev, quarter=quarter, value=show(value)), ask]
