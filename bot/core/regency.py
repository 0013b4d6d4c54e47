"""The regency's offices (issue 16, item 5): the regency admin adds offices and sees them.

Two admin levels:

* the *office admin* is a person of one office with role ``admin`` (``sopbot people add
  --role admin --kantor KODE``): /pegawai, /alihkan and the status boards of that office;
* the *regency admin* adds offices and lists them (``/kantor`` in the chat). Who is one
  is ``[regency] admins`` in config.toml: a list of Telegram user ids, edited by the
  operator of the server only (a refused ``/kantor`` tells the person their id). No
  person row is needed: the regency admin may work at the Setda, in no office.

On the server, ``sopbot office add`` and ``sopbot office list`` do the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.core import audit
from models import Cycle, Office, Person
from models.enums import CycleStatus

ZONES = {"WIB": "Asia/Jakarta", "WITA": "Asia/Makassar", "WIT": "Asia/Jayapura"}
ZONE_LABELS = {v: k for k, v in ZONES.items()}
AUDIT_ACTION = "office.add"


class OfficeError(ValueError):
    """An office that cannot be added; the message is Indonesian, for the person."""


def is_regency_admin(config: Config, telegram_user_id: int | None) -> bool:
    return telegram_user_id is not None and telegram_user_id in config.regency.admins


def zone_of(text: str | None) -> str | None:
    """``WIB``/``WITA``/``WIT`` (any case) as a zone name; None for none given."""
    if not text:
        return None
    zone = ZONES.get(text.strip().upper())
    if zone is None:
        raise OfficeError(f"Zona waktu {text!r} tidak dikenal: pilih WIB, WITA atau WIT.")
    return zone


async def add_office(session: AsyncSession, config: Config, *, unit_code: str, name: str,
                     zone: str | None, at: datetime, actor: str) -> Office:
    """A new office of the regency (no bidang and people yet: its set-up workbook,
    ``sopbot setup import``, or ``sopbot people add --kantor`` fill it). Its time zone is
    its own setting (``Office.settings``); the regency and place are config.toml's."""
    unit_code, name = unit_code.strip(), " ".join(name.split())
    if not unit_code or not name:
        raise OfficeError("Kode unit dan nama kantor wajib diisi.")
    if len(unit_code) > 40 or len(name) > 200:
        raise OfficeError("Kode unit paling panjang 40 huruf, nama kantor 200 huruf.")
    taken = (await session.execute(select(Office).where(
        Office.unit_code == unit_code))).scalars().first()
    if taken is not None:
        raise OfficeError(f"Kode unit {unit_code} sudah dipakai oleh {taken.name}.")
    settings = {"calendar": {"timezone": zone}} if zone else {}
    office = Office(name=name, unit_code=unit_code, regency=config.office.regency,
                    place=config.office.place, settings=settings)
    session.add(office)
    await session.flush()
    await audit.record(session, AUDIT_ACTION, actor_id=None, cycle_id=None, at=at,
                       office_id=office.id, unit_code=unit_code, name=name,
                       timezone=zone or config.calendar.timezone, by=actor)
    return office


@dataclass
class OfficeRow:
    office: Office
    people: int        # active people
    registered: int    # of them, bound to a Telegram account
    open_cycles: int
    zone: str          # WIB, WITA, WIT (or the zone's name)


async def office_rows(session: AsyncSession, config: Config) -> list[OfficeRow]:
    offices = (await session.execute(select(Office).order_by(Office.id))).scalars().all()
    people = dict((await session.execute(
        select(Person.office_id, func.count(Person.id)).where(Person.active.is_(True))
        .group_by(Person.office_id))).all())
    registered = dict((await session.execute(
        select(Person.office_id, func.count(Person.id)).where(
            Person.active.is_(True), Person.telegram_user_id.is_not(None))
        .group_by(Person.office_id))).all())
    cycles = dict((await session.execute(
        select(Cycle.office_id, func.count(Cycle.id)).where(Cycle.status == CycleStatus.ACTIVE)
        .group_by(Cycle.office_id))).all())
    rows = []
    for o in offices:
        tz = ((o.settings or {}).get("calendar") or {}).get("timezone") or config.calendar.timezone
        rows.append(OfficeRow(o, people.get(o.id, 0), registered.get(o.id, 0),
                              cycles.get(o.id, 0), ZONE_LABELS.get(tz, tz)))
    return rows
