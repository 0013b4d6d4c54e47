"""How long `sopbot setup import` takes for a large office (target: 5,000 indicators in
under 20 s).

Writes a set-up workbook with the example office's bidang and people and N indicators
(120-character names with ``<``, ``&``, quotes and emoji; five targets each, 13-digit
rupiah for some), then times, each into its own fresh SQLite database:

* ``import``: :func:`bot.core.office_setup.import_setup` as the CLI runs it (read in read-only
  mode in a worker thread, applied in bulk: one executemany per table, one audit row);
* ``baseline``: the same workbook read, then written the way it was before this change
  (one flush per indicator and one query for its targets; ``_old_apply_office`` below
  is that code), so both figures come from the same run on the same machine.

Usage::

    python bench/bench_setup_import.py [--indicators 5000] [--no-baseline]

No asserts: it prints the figures.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select  # noqa: E402

from bench.common import fresh_database  # noqa: E402
from bot.devtools.example_data import example_office  # noqa: E402
from bot.core.office_data import IndicatorSpec, OfficeSpec, TargetSpec  # noqa: E402
from models import Indicator, Office, Person, Target, Unit  # noqa: E402
from models.enums import Polarity, ValueType  # noqa: E402

YEAR = 2024


def office_with_indicators(n: int, year: int = YEAR) -> OfficeSpec:
    """The example office with ``n`` indicators spread over its bidang."""
    base = example_office(year)
    units = [u.code for u in base.units]
    indicators = []
    for i in range(n):
        unit = units[i % len(units)]
        name = (f"Persentase <{i}> pekerja & \"peserta\" pelatihan 'berbasis' kompetensi "
                f"yang ditempatkan 😀 Kab. Lampung Barat no. {i:05d} ")
        name = (name * 2)[:120]
        rupiah = i % 3 == 0
        targets = tuple(
            TargetSpec(year, period, Decimal(1_250_000_000_000 + i) if rupiah
                       else Decimal(f"{80 + i % 20}.{period}"))
            for period in range(5))
        indicators.append(IndicatorSpec(
            code=f"{unit}-{i:05d}", unit_code=unit, name=name,
            sasaran=f"Sasaran {i % 40} & <program>", definition="Jumlah / total x 100 %",
            unit_of_measure="Rp" if rupiah else "%",
            polarity=Polarity.LOWER if i % 7 == 0 else Polarity.HIGHER,
            value_type=ValueType.NUMERIC if rupiah else ValueType.PERCENT,
            targets=targets))
    return replace(base, indicators=tuple(indicators))


async def _old_apply_office(session, spec: OfficeSpec) -> Office:
    """apply_office as it was before the bulk import (commit 668257a): one flush per
    indicator and one SELECT of its targets."""
    office = (await session.execute(select(Office).order_by(Office.id))).scalars().first()
    if office is None:
        office = Office(name=spec.name, regency=spec.regency, place=spec.place,
                        unit_code=spec.unit_code, example_data=spec.example_data)
        session.add(office)
    await session.flush()
    units = {u.code: u for u in (await session.execute(
        select(Unit).where(Unit.office_id == office.id))).scalars()}
    for pos, u in enumerate(spec.units):
        row = units.get(u.code)
        if row is None:
            row = Unit(office_id=office.id, code=u.code)
            session.add(row)
            units[u.code] = row
        row.name, row.is_secretariat, row.sort_order = u.name, u.is_secretariat, pos
    await session.flush()
    for p in spec.people:
        row = Person(office_id=office.id, name=p.name, role=p.role, nip=p.nip)
        session.add(row)
        row.unit_id = units[p.unit_code].id if p.unit_code else None
        row.rank, row.position, row.agency_key = p.rank, p.position, p.agency_key
    await session.flush()
    indicators = {i.code: i for i in (await session.execute(
        select(Indicator).where(Indicator.office_id == office.id))).scalars()}
    for pos, i in enumerate(spec.indicators):
        row = indicators.get(i.code)
        if row is None:
            row = Indicator(office_id=office.id, code=i.code)
            session.add(row)
        row.unit_id = units[i.unit_code].id
        row.name, row.level, row.sasaran, row.definition = i.name, i.level, i.sasaran, i.definition
        row.unit_of_measure, row.polarity, row.lower_formula = (
            i.unit_of_measure, i.polarity, i.lower_formula)
        row.value_type, row.cumulative, row.sort_order, row.active = (
            i.value_type, i.cumulative, pos, True)
        await session.flush()
        existing = {(t.year, t.period): t for t in (await session.execute(
            select(Target).where(Target.indicator_id == row.id))).scalars()}
        for t in i.targets:
            trow = existing.get((t.year, t.period))
            if trow is None:
                trow = Target(indicator_id=row.id, year=t.year, period=t.period)
                session.add(trow)
            trow.value, trow.value_text = t.value, t.text
    await session.flush()
    return office


async def _counts(sm) -> tuple[int, int]:
    async with sm() as s:
        return (await s.scalar(select(func.count()).select_from(Indicator)),
                await s.scalar(select(func.count()).select_from(Target)))


async def run(n: int, baseline: bool) -> None:
    from bot.core.office_setup import import_setup
    from reports.setup_workbook import read_setup, write_template

    folder = Path(tempfile.mkdtemp(prefix="sopbot-bench-setup-"))
    t0 = time.perf_counter()
    path = write_template(folder / "kantor.xlsx", year=YEAR, example=office_with_indicators(n))
    print(f"workbook with {n} indicators written in {time.perf_counter() - t0:.1f} s "
          f"({path.stat().st_size / 1024 / 1024:.1f} MB)")

    cfg, engine, sm, _sv = await fresh_database(folder / "new")
    t0 = time.perf_counter()
    async with sm() as s, s.begin():
        result = await import_setup(s, path, at=datetime.now(timezone.utc), config=cfg)
    new_time = time.perf_counter() - t0
    assert result.errors == [], result.errors[:3]
    new_counts = await _counts(sm)
    await engine.dispose()

    old_time = None
    if baseline:
        cfg, engine, sm, _sv = await fresh_database(folder / "old")
        t0 = time.perf_counter()
        spec = (await asyncio.to_thread(read_setup, path)).spec
        async with sm() as s, s.begin():
            await _old_apply_office(s, spec)
        old_time = time.perf_counter() - t0
        old_counts = await _counts(sm)
        await engine.dispose()
        assert old_counts == new_counts, (old_counts, new_counts)

    print(f"{'':<34}{'indicators':>11}{'targets':>9}{'seconds':>9}")
    print(f"{'import (bulk, audited)':<34}{new_counts[0]:>11}{new_counts[1]:>9}{new_time:>9.1f}")
    if old_time is not None:
        print(f"{'baseline (flush per indicator)':<34}{new_counts[0]:>11}{new_counts[1]:>9}"
              f"{old_time:>9.1f}")
        print(f"speed-up x{old_time / new_time:.1f}; target: under 20 s for 5,000 indicators")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--indicators", type=int, default=5000)
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    asyncio.run(run(args.indicators, not args.no_baseline))


if __name__ == "__main__":
    main()
