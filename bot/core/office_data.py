"""An office's set-up as plain data, applied to the database in one transaction.

Used by the workbook importer (``sopbot setup import``) and by the example data of the
demo, so both create an office the same way.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Indicator, Office, Person, Target, Unit
from models.enums import IndicatorLevel, LowerFormula, Polarity, Role, ValueType


@dataclass(frozen=True)
class UnitSpec:
    code: str
    name: str
    is_secretariat: bool = False


@dataclass(frozen=True)
class PersonSpec:
    name: str
    role: Role
    nip: str | None = None
    unit_code: str | None = None
    rank: str = ""
    position: str = ""
    agency_key: str | None = None


@dataclass(frozen=True)
class TargetSpec:
    year: int
    period: int  # 0 annual, 1-4 quarters
    value: Decimal | None = None
    text: str | None = None


@dataclass(frozen=True)
class IndicatorSpec:
    code: str
    unit_code: str
    name: str
    level: IndicatorLevel = IndicatorLevel.SASARAN
    sasaran: str = ""
    definition: str = ""
    unit_of_measure: str = ""
    polarity: Polarity = Polarity.HIGHER
    lower_formula: LowerFormula = LowerFormula.MIRROR
    value_type: ValueType = ValueType.NUMERIC
    cumulative: bool = False
    aggregation: str | None = None  # "sum" | "last" | "average"; None: default
    targets: tuple[TargetSpec, ...] = ()


@dataclass(frozen=True)
class OfficeSpec:
    name: str
    regency: str
    place: str
    unit_code: str
    units: tuple[UnitSpec, ...] = ()
    people: tuple[PersonSpec, ...] = ()
    indicators: tuple[IndicatorSpec, ...] = ()
    example_data: bool = False
    extra: dict = field(default_factory=dict)
    # the office's own settings (``Office.settings``, ``bot.config.office_config``);
    # None: leave them as they are
    settings: dict | None = None


def _plain(value: Any) -> Any:
    """A value as it is written into the audit trail."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    return value


def _update(row: Any, values: dict[str, Any], shown: dict[str, Any] | None = None
            ) -> dict[str, list[Any]]:
    """Set the attributes of ``row`` that differ from ``values``; the changes as
    {field: [old, new]} (``shown`` replaces a value in the record, e.g. a unit code for
    its id)."""
    changed: dict[str, list[Any]] = {}
    for key, new in values.items():
        old = getattr(row, key)
        if old != new:
            label = (shown or {}).get(key)
            changed[key] = ([label[0], label[1]] if label else [_plain(old), _plain(new)])
            setattr(row, key, new)
    return changed


def _target_label(year: int, period: int) -> str:
    return f"target {year}" + (f" TW {('I', 'II', 'III', 'IV')[period - 1]}" if period else "")


def _target_value(t: TargetSpec) -> Any:
    return t.text if t.text is not None else _plain(t.value)


async def apply_office(session: AsyncSession, spec: OfficeSpec,
                       changes: list[dict[str, Any]] | None = None, *,
                       office_id: int | None = None) -> Office:
    """Create or update the office from ``spec`` (matched by unit code, NIP, indicator code).

    Indicators and targets, the large tables, are written in bulk: existing rows are
    read with one query per table, new rows inserted with one executemany per table.
    When ``changes`` is given, one entry per created or changed entity is appended to it
    (``{"jenis", "kunci", "aksi": "baru"|"ubah", "isi" | "ubah"}``; an indicator's
    entry includes its targets), for the audit trail.
    """
    log = changes if changes is not None else []
    # offices as data: the office of ``office_id``, else the one of the workbook's unit
    # code (a new unit code is a new office of the regency)
    if office_id is not None:
        office = await session.get(Office, office_id)
        if office is None:
            raise LookupError(f"Kantor {office_id} tidak ditemukan.")
    else:
        office = (await session.execute(select(Office).where(
            Office.unit_code == spec.unit_code).order_by(Office.id))).scalars().first()
    office_values = {"name": spec.name, "regency": spec.regency, "place": spec.place,
                     "unit_code": spec.unit_code, "example_data": spec.example_data}
    if spec.settings is not None:  # the workbook's settings replace the office's
        office_values["settings"] = spec.settings
    if office is None:
        office = Office(**office_values)
        session.add(office)
        log.append({"jenis": "kantor", "kunci": spec.name, "aksi": "baru", "isi": office_values})
    elif diff := _update(office, office_values):
        log.append({"jenis": "kantor", "kunci": spec.name, "aksi": "ubah", "ubah": diff})
    await session.flush()

    units: dict[str, Unit] = {
        u.code: u for u in (await session.execute(
            select(Unit).where(Unit.office_id == office.id))).scalars()
    }
    for pos, u in enumerate(spec.units):
        values = {"name": u.name, "is_secretariat": u.is_secretariat, "sort_order": pos}
        row = units.get(u.code)
        if row is None:
            units[u.code] = Unit(office_id=office.id, code=u.code, **values)
            session.add(units[u.code])
            log.append({"jenis": "bidang", "kunci": u.code, "aksi": "baru", "isi": values})
        elif diff := _update(row, values):
            log.append({"jenis": "bidang", "kunci": u.code, "aksi": "ubah", "ubah": diff})
    await session.flush()
    code_of = {unit.id: code for code, unit in units.items()}

    existing = list((await session.execute(
        select(Person).where(Person.office_id == office.id))).scalars())
    by_nip = {p.nip: p for p in existing if p.nip}
    # people without a NIP (agency contacts, honorary staff) are matched by name and role
    by_name = {(p.name, p.role): p for p in existing if not p.nip}
    for p in spec.people:
        row = by_nip.get(p.nip) if p.nip else by_name.get((p.name, p.role))
        unit_id = units[p.unit_code].id if p.unit_code else None
        values = {"name": p.name, "role": p.role, "unit_id": unit_id, "rank": p.rank,
                  "position": p.position, "agency_key": p.agency_key, "active": True}
        key = p.nip or p.name
        if row is None:
            session.add(Person(office_id=office.id, nip=p.nip, **values))
            record = {k: _plain(v) for k, v in values.items() if k != "unit_id"}
            log.append({"jenis": "pegawai", "kunci": key, "aksi": "baru",
                        "isi": {**record, "nip": p.nip, "bidang": p.unit_code}})
        elif diff := _update(row, values, {"unit_id": (code_of.get(row.unit_id), p.unit_code)}):
            if "unit_id" in diff:
                diff["bidang"] = diff.pop("unit_id")
            log.append({"jenis": "pegawai", "kunci": key, "aksi": "ubah", "ubah": diff})
    await session.flush()

    indicators = {
        i.code: i for i in (await session.execute(
            select(Indicator).where(Indicator.office_id == office.id))).scalars()
    }
    targets: dict[int, dict[tuple[int, int], Target]] = {}
    for t in (await session.execute(
            select(Target).join(Indicator, Indicator.id == Target.indicator_id)
            .where(Indicator.office_id == office.id))).scalars():
        targets.setdefault(t.indicator_id, {})[(t.year, t.period)] = t
    new_indicators: list[dict[str, Any]] = []
    new_targets: list[tuple[str, TargetSpec]] = []
    for pos, i in enumerate(spec.indicators):
        values = {"unit_id": units[i.unit_code].id, "name": i.name, "level": i.level,
                  "sasaran": i.sasaran, "definition": i.definition,
                  "unit_of_measure": i.unit_of_measure, "polarity": i.polarity,
                  "lower_formula": i.lower_formula, "value_type": i.value_type,
                  "cumulative": i.cumulative, "aggregation": i.aggregation,
                  "sort_order": pos, "active": True}
        row = indicators.get(i.code)
        if row is None:
            new_indicators.append({"office_id": office.id, "code": i.code, **values})
            new_targets += [(i.code, t) for t in i.targets]
            record = {k: _plain(v) for k, v in values.items() if k != "unit_id"}
            record["bidang"] = i.unit_code
            record.update({_target_label(t.year, t.period): _target_value(t) for t in i.targets})
            log.append({"jenis": "indikator", "kunci": i.code, "aksi": "baru", "isi": record})
            continue
        diff = _update(row, values, {"unit_id": (code_of.get(row.unit_id), i.unit_code)})
        if "unit_id" in diff:
            diff["bidang"] = diff.pop("unit_id")
        have = targets.get(row.id, {})
        for t in i.targets:
            trow = have.get((t.year, t.period))
            if trow is None:
                new_targets.append((i.code, t))
                diff[_target_label(t.year, t.period)] = [None, _target_value(t)]
            elif trow.value != t.value or trow.value_text != t.text:
                diff[_target_label(t.year, t.period)] = [
                    trow.value_text if trow.value_text is not None else _plain(trow.value),
                    _target_value(t)]
                trow.value, trow.value_text = t.value, t.text
        if diff:
            log.append({"jenis": "indikator", "kunci": i.code, "aksi": "ubah", "ubah": diff})
    await session.flush()  # the changed rows: one UPDATE batch per table
    if new_indicators:
        await session.execute(insert(Indicator), new_indicators)  # one executemany
    if new_targets:
        ids = dict((await session.execute(
            select(Indicator.code, Indicator.id).where(Indicator.office_id == office.id))).all())
        await session.execute(insert(Target), [  # one executemany
            {"indicator_id": ids[code], "year": t.year, "period": t.period,
             "value": t.value, "value_text": t.text} for code, t in new_targets])
    return office
