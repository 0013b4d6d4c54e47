"""Who may hold a step: the one rule of signing authority.

A step run can be held (and its buttons pressed) only by an active person whose role fits
the step's role in the SOP definition, or by the person appointed Plh./Plt. of that role
at that moment:

* kadis, sekretaris, kasubag: a person of that role;
* kabid (a bidang's step, e.g. step 4): the Kabid of that bidang; for the collect step
  also a staf of that bidang (the Kasubag or the admin may hand a bidang's data entry to
  its staf, who then sends it);
* staf: a staf (of the Sekretariat when the step says ``unit = "sekretariat"``; of the
  step's bidang when the run has one);
* anyone else only while an ``ActingAppointment`` for that role (and bidang) covers the
  moment and names them.

``holding_capacity`` answers with the capacity ("Kepala Dinas", "Plh. Kepala Dinas",
"Plt. Sekretaris", ...) or ``None``; ``may_hold`` is its yes/no. Every move of a step
(``/alihkan``, ``sopbot people change|deactivate``, acting appointments starting and
ending) and every action on a step (``Workflow._require_holder``) asks here, with the
injected clock's time. No Telegram here.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.sop import Step
from bot.texts import kabid_title, role_title, t
from models import ActingAppointment, ActingKind, Person, Unit
from models.enums import Role
from models.session import get as loaded_get


# -- Plh./Plt. appointments: who acts for a role at a moment ---------------------------
def unit_key(role: Role, unit_id: int | None) -> int | None:
    return unit_id if role == Role.KABID else None


def appointment_slot(stmt, role: Role, unit_id: int | None):
    unit = unit_key(role, unit_id)
    stmt = stmt.where(ActingAppointment.role == role)
    if unit is None:
        return stmt.where(ActingAppointment.unit_id.is_(None))
    return stmt.where(ActingAppointment.unit_id == unit)


async def covering(session: AsyncSession, office_id: int, role: Role, unit_id: int | None,
                   at: datetime) -> ActingAppointment | None:
    """The appointment that covers ``at`` for this role (and bidang), if any."""
    stmt = (select(ActingAppointment)
            .join(Person, Person.id == ActingAppointment.acting_person_id)
            .where(ActingAppointment.office_id == office_id,
                   ActingAppointment.cancelled.is_(False),
                   ActingAppointment.starts_at <= at, ActingAppointment.ends_at > at,
                   Person.active.is_(True)))
    stmt = appointment_slot(stmt, role, unit_id).order_by(ActingAppointment.id.desc())
    return (await session.execute(stmt)).scalars().first()


async def acting_people(session: AsyncSession, office_id: int, roles, at: datetime
                        ) -> list[Person]:
    """The people acting (Plh./Plt.) for these roles at ``at``, in role order."""
    found: list[Person] = []
    for role in roles:
        appt = await covering(session, office_id, role, None, at)
        if appt is not None:
            person = await session.get(Person, appt.acting_person_id)
            if person is not None and person not in found:
                found.append(person)
    return found


async def acting_roles(session: AsyncSession, person: Person, at: datetime) -> set[Role]:
    """The roles ``person`` holds as Plh./Plt. at ``at``."""
    rows = (await session.execute(select(ActingAppointment.role).where(
        ActingAppointment.acting_person_id == person.id,
        ActingAppointment.cancelled.is_(False),
        ActingAppointment.starts_at <= at, ActingAppointment.ends_at > at))).scalars()
    return {Role(r) for r in rows}


async def acting_for(session: AsyncSession, person: Person, role: Role, unit_id: int | None,
                     at: datetime) -> ActingAppointment | None:
    """The appointment under which ``person`` acts for this role at ``at``, if any."""
    stmt = select(ActingAppointment).where(
        ActingAppointment.acting_person_id == person.id,
        ActingAppointment.cancelled.is_(False),
        ActingAppointment.starts_at <= at, ActingAppointment.ends_at > at)
    stmt = appointment_slot(stmt, role, unit_id).order_by(ActingAppointment.id.desc())
    return (await session.execute(stmt)).scalars().first()



async def role_holder(session: AsyncSession, office_id: int, role: Role, unit_id: int | None,
                      at: datetime, *, secretariat: bool = False, exclude: int | None = None,
                      acting: bool = True) -> Person | None:
    """Who holds ``role`` (of bidang ``unit_id`` for a Kabid or a bidang's staf) at
    ``at``: the Plh./Plt. whose appointment covers ``at`` first (unless ``acting`` is
    false), else the first active person of the role; ``secretariat``: a staf of the
    Sekretariat. ``exclude``: never this person (the one leaving). The one rule the
    engine and the administration both use."""
    if acting:
        appt = await covering(session, office_id, role, unit_id, at)
        if appt is not None and appt.acting_person_id != exclude:
            return await session.get(Person, appt.acting_person_id)
    stmt = select(Person).where(Person.office_id == office_id, Person.role == role,
                                Person.active.is_(True))
    if role == Role.KABID or role == Role.STAF and unit_id is not None:
        stmt = stmt.where(Person.unit_id == unit_id)
    elif role == Role.STAF and secretariat:
        stmt = stmt.join(Unit, Unit.id == Person.unit_id).where(Unit.is_secretariat.is_(True))
    if exclude is not None:
        stmt = stmt.where(Person.id != exclude)
    return (await session.execute(stmt.order_by(Person.id))).scalars().first()


@dataclass(frozen=True)
class Capacity:
    """The capacity in which a person holds a step: their own post or as Plh./Plt."""

    role: Role
    title: str  # "Kepala Dinas", "Sekretaris", "Kepala Bidang Perindustrian", ...
    acting: ActingKind | None = None

    @property
    def acting_label(self) -> str:
        """"Plh."/"Plt." when acting, else ""."""
        return self.acting.label if self.acting is not None else ""

    @property
    def label(self) -> str:
        """"Plh. Kepala Dinas", "Sekretaris", ..."""
        return f"{self.acting_label} {self.title}".strip()


def _unit_title(role: Role, unit: Unit | None) -> str:
    if unit is None:
        return role_title(role)
    if role == Role.KABID:
        return kabid_title(unit.name)
    return f"{role_title(role)} {unit.name}"


def _bidang_step(step: Step, unit_id: int | None) -> bool:
    """A step run per bidang (the Kabid's), or a staf step of one bidang."""
    return unit_id is not None and step.role in (Role.KABID, Role.STAF)


async def _natural(session: AsyncSession, person: Person, step: Step,
                   unit_id: int | None) -> Capacity | None:
    """The capacity the person's own post gives for the step, if any."""
    if step.role == Role.KABID:
        if unit_id is None or person.unit_id != unit_id:
            return None
        unit = await loaded_get(session, Unit, unit_id)
        if person.role == Role.KABID:
            return Capacity(Role.KABID, _unit_title(Role.KABID, unit))
        if person.role == Role.STAF and step.kind == "collect":
            return Capacity(Role.STAF, _unit_title(Role.STAF, unit))
        return None
    if person.role != step.role:
        return None
    if step.role == Role.STAF:
        if step.unit == "sekretariat":
            unit = await session.get(Unit, person.unit_id) if person.unit_id else None
            if unit is None or not unit.is_secretariat:
                return None
            return Capacity(Role.STAF, _unit_title(Role.STAF, unit))
        if unit_id is not None and person.unit_id != unit_id:
            return None
        unit = await session.get(Unit, person.unit_id) if person.unit_id else None
        return Capacity(Role.STAF, _unit_title(Role.STAF, unit))
    return Capacity(step.role, role_title(step.role))


async def holding_capacity(session: AsyncSession, person: Person | None, step: Step,
                           unit_id: int | None, at: datetime) -> Capacity | None:
    """The capacity in which ``person`` may hold ``step`` (of bidang ``unit_id``) at
    ``at``: their own post first, else a Plh./Plt. appointment covering ``at``;
    ``None`` when they may not hold it (or are inactive)."""
    if person is None or not person.active:
        return None
    own = await _natural(session, person, step, unit_id)
    if own is not None:
        return own
    appt = await acting_for(session, person, step.role,
                            unit_id if step.role == Role.KABID else None, at)
    if appt is None:
        return None
    unit = await session.get(Unit, unit_id) if step.role == Role.KABID and unit_id else None
    return Capacity(step.role, _unit_title(step.role, unit), appt.kind)


async def may_hold(session: AsyncSession, person: Person | None, step: Step,
                   unit_id: int | None, at: datetime) -> bool:
    """Whether ``person`` may hold ``step`` at ``at`` (see ``holding_capacity``)."""
    return await holding_capacity(session, person, step, unit_id, at) is not None


async def who_may_text(session: AsyncSession, step: Step, unit_id: int | None) -> str:
    """Who may hold the step, in words: "Kepala Dinas", "Kepala Bidang Perindustrian atau
    staf bidang itu", "staf Sekretariat"."""
    unit = await session.get(Unit, unit_id) if unit_id else None
    if step.role == Role.KABID:
        title = _unit_title(Role.KABID, unit)
        return t("au.who_collect", title=title) if step.kind == "collect" else title
    if step.role == Role.STAF:
        if step.unit == "sekretariat":
            return t("au.who_staf_sekretariat")
        if _bidang_step(step, unit_id):
            return _unit_title(Role.STAF, unit)
        return role_title(Role.STAF)
    return role_title(step.role)


async def eligible_people(session: AsyncSession, office_id: int, step: Step,
                          unit_id: int | None, at: datetime,
                          exclude: set[int] | frozenset[int] = frozenset()) -> list[Person]:
    """The active people of the office who may hold the step at ``at``: people of the
    bidang first, then by id."""
    people = (await session.execute(select(Person).where(
        Person.office_id == office_id, Person.active.is_(True)).order_by(Person.id))
    ).scalars().all()
    out = [p for p in people if p.id not in exclude
           and await may_hold(session, p, step, unit_id, at)]
    return sorted(out, key=lambda p: (unit_id is not None and p.unit_id != unit_id, p.id))


async def cannot_hold_text(session: AsyncSession, person: Person, step: Step,
                           unit_id: int | None) -> str:
    """The refusal of a move: "Ditolak: langkah 8 hanya dapat dipegang Kepala Dinas, ...
    <name> tidak memenuhi syarat itu; tidak ada yang diubah."."""
    return t("au.err_cannot_hold", name=person.name, step=step.number,
             who=await who_may_text(session, step, unit_id))


__all__ = ["Capacity", "cannot_hold_text", "eligible_people", "holding_capacity", "may_hold",
           "who_may_text"]
