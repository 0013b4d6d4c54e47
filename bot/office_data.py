"""An office's set-up as plain data, applied to the database in one transaction.

Used by the workbook importer (``sopbot setup import``) and by the example data of the
demo, so both create an office the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
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


async def apply_office(session: AsyncSession, spec: OfficeSpec) -> Office:
    """Create or update the office from ``spec`` (matched by unit code, NIP, indicator code)."""
    office = (await session.execute(select(Office).order_by(Office.id))).scalars().first()
    if office is None:
        office = Office(name=spec.name, regency=spec.regency, place=spec.place,
                        unit_code=spec.unit_code, example_data=spec.example_data)
        session.add(office)
    else:
        office.name, office.regency, office.place = spec.name, spec.regency, spec.place
        office.unit_code, office.example_data = spec.unit_code, spec.example_data
    await session.flush()

    units: dict[str, Unit] = {
        u.code: u for u in (await session.execute(
            select(Unit).where(Unit.office_id == office.id))).scalars()
    }
    for pos, u in enumerate(spec.units):
        row = units.get(u.code)
        if row is None:
            row = Unit(office_id=office.id, code=u.code)
            session.add(row)
            units[u.code] = row
        row.name, row.is_secretariat, row.sort_order = u.name, u.is_secretariat, pos
    await session.flush()

    existing = list((await session.execute(
        select(Person).where(Person.office_id == office.id))).scalars())
    by_nip = {p.nip: p for p in existing if p.nip}
    # people without a NIP (agency contacts, honorary staff) are matched by name and role
    by_name = {(p.name, p.role): p for p in existing if not p.nip}
    for p in spec.people:
        row = by_nip.get(p.nip) if p.nip else by_name.get((p.name, p.role))
        if row is None:
            row = Person(office_id=office.id, name=p.name, role=p.role, nip=p.nip)
            session.add(row)
        row.name, row.role = p.name, p.role
        row.unit_id = units[p.unit_code].id if p.unit_code else None
        row.rank, row.position, row.agency_key = p.rank, p.position, p.agency_key
        row.active = True
    await session.flush()

    indicators = {
        i.code: i for i in (await session.execute(
            select(Indicator).where(Indicator.office_id == office.id))).scalars()
    }
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
        existing = {
            (t.year, t.period): t for t in (await session.execute(
                select(Target).where(Target.indicator_id == row.id))).scalars()
        }
        for t in i.targets:
            trow = existing.get((t.year, t.period))
            if trow is None:
                trow = Target(indicator_id=row.id, year=t.year, period=t.period)
                session.add(trow)
            trow.value, trow.value_text = t.value, t.text
    await session.flush()
    return office
