"""Office administration: people joining, moving and leaving; acting officials (Plh. and
Plt.); reassigning open tasks; the roster.

No Telegram here, as in ``bot.core.workflow``: every function takes a session and the
services, checks who asks and what is asked before writing anything (a refusal raises a
``WorkflowError`` with an Indonesian message), then changes state, writes an audit row
and queues the messages it causes. ``actor=None`` means the operator on the server (the
``sopbot people`` CLI).

Acting officials: while an ``ActingAppointment`` covers the clock, ``Workflow.holder_for``
gives the role's new steps to the acting person. ``sync_acting`` (the deadline job and
start-up) moves the steps already open when the range starts to the acting person and,
when the range is over or cancelled, moves what is still open back; each move writes a
``step.reassign`` audit row and tells both people.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.authority import (
    appointment_slot, cannot_hold_text, covering, eligible_people, may_hold, role_holder,
    unit_key, who_may_text,
)
from bot.core.services import Services
from bot.core.sop import StepKind, step_buttons
from bot.texts import kabid_title, role_title, t
from bot.core.workcal import format_wib, office_zone, to_wib
from bot.core.workflow import (
    InvalidInput, NotAllowed, NotFound, StaleAction, WorkflowError, Workflow, WrongState,
)
from models import (
    ActingAppointment, ActingKind, Conversation, Cycle, CycleIndicator, Indicator, Invitation,
    Person, StepRun, Unit,
)
from models.enums import Role, StepStatus

log = logging.getLogger(__name__)

APPOINTABLE = (Role.KADIS, Role.SEKRETARIS, Role.KASUBAG, Role.KABID)
HOLDER_ROLES = (Role.KADIS, Role.SEKRETARIS, Role.KASUBAG, Role.KABID, Role.STAF)
PEOPLE_ROLES = (Role.ADMIN,)
APPOINT_ROLES = (Role.ADMIN, Role.KADIS)
ROSTER_ROLES = (Role.ADMIN, Role.KADIS, Role.SEKRETARIS)
REASSIGN_ANY = (Role.SEKRETARIS, Role.KADIS)  # any open step
REASSIGN_COLLECT = (Role.KASUBAG,)  # step-4 runs and indicators only
REASONS = ("mutasi", "pensiun", "lainnya")


def range_text(starts_at: datetime, ends_at: datetime) -> str:
    """"14 Oktober 2024 s.d. 16 Oktober 2024" (an end at 00.00 is the day before)."""
    from reports.numbers import format_date

    start, end = to_wib(starts_at), to_wib(ends_at)
    if start.time() == time(0) and end.time() == time(0):
        return t("a.range", start=format_date(start.date()),
                 end=format_date((end - timedelta(minutes=1)).date()))
    return t("a.range", start=format_wib(starts_at), end=format_wib(ends_at))


def day_range(start: date, end: date) -> tuple[datetime, datetime]:
    """Whole days in the office's zone: from 00.00 of ``start`` to 00.00 after ``end``."""
    zone = office_zone()  # the office acted for (``Workflow.bind``)
    return (datetime.combine(start, time(0), zone),
            datetime.combine(end + timedelta(days=1), time(0), zone))


_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")


def parse_range(text: str) -> tuple[datetime, datetime]:
    """"14-10-2024 s.d. 16-10-2024", "14/10/2024 - 16/10/2024" or one date."""
    found = []
    for m in _DATE.finditer(text or ""):
        try:
            if m.group(1):
                found.append(date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
            else:
                found.append(date(int(m.group(6)), int(m.group(5)), int(m.group(4))))
        except ValueError:
            raise InvalidInput(t("a.err_range_format")) from None
    if len(found) not in (1, 2):
        raise InvalidInput(t("a.err_range_format"))
    start, end = found[0], found[-1]
    if end < start:
        raise InvalidInput(t("a.err_range_order"))
    return day_range(start, end)


@dataclass
class Deactivation:
    person: Person
    successor: Person | None
    runs: list[StepRun] = field(default_factory=list)
    items: list[CycleIndicator] = field(default_factory=list)


class Administration:
    def __init__(self, session: AsyncSession, services: Services,
                 office_id: int | None = None) -> None:
        self.s = session
        self.wf = Workflow(session, services, office_id)

    @property
    def sv(self) -> Services:
        """The services of the office acted for (``Workflow.bind``)."""
        return self.wf.sv

    @property
    def now(self) -> datetime:
        return self.sv.clock.now()

    # ----------------------------------------------------------------- helpers
    def _require(self, actor: Person | None, roles) -> None:
        if actor is None:  # the operator on the server (CLI)
            return
        self.wf._check_active(actor)
        if actor.role not in roles:
            raise NotAllowed()

    async def person(self, person_id: int) -> Person:
        """A person of the office acted for (of another office: not found)."""
        p = await self.s.get(Person, person_id)
        if p is None:
            raise NotFound()
        if self.wf.office_id is None and self.wf._pending is None:
            await self.wf.bind(p.office_id)
        if p.office_id != (await self.wf.office()).id:
            raise NotFound()
        return p

    async def person_by_nip(self, nip: str) -> Person:
        office = await self.wf.office()
        p = (await self.s.execute(select(Person).where(Person.office_id == office.id,
                                                       Person.nip == nip.strip())
                                  .order_by(Person.id))).scalars().first()
        if p is None:
            raise NotFound(t("a.err_no_nip", nip=nip))
        return p

    async def unit_by_code(self, code: str) -> Unit:
        office = await self.wf.office()
        of_office = select(Unit).where(Unit.office_id == office.id)
        u = (await self.s.execute(of_office.where(Unit.code == code.strip().upper()))
             ).scalar_one_or_none()
        if u is None:
            u = (await self.s.execute(of_office.where(Unit.code == code.strip()))
                 ).scalar_one_or_none()
        if u is None:
            codes = ", ".join((await self.s.execute(
                select(Unit.code).where(Unit.office_id == office.id).order_by(Unit.sort_order)))
                              .scalars())
            raise InvalidInput(t("a.err_no_unit", code=code, codes=codes))
        return u

    async def slot_title(self, role: Role, unit_id: int | None) -> str:
        if role == Role.KABID and unit_id:
            unit = await self.s.get(Unit, unit_id)
            if unit is not None:
                return kabid_title(unit.name)
        if role == Role.KADIS:
            office = await self.wf.office()
            return f"Kepala {office.name}"
        return role_title(role)

    async def active_people(self, office_id: int, *, but: int | None = None,
                            roles: tuple[Role, ...] | None = None) -> list[Person]:
        """The office's active people (of ``roles``; without ``but``), by bidang."""
        stmt = select(Person).where(Person.office_id == office_id, Person.active.is_(True))
        if but is not None:
            stmt = stmt.where(Person.id != but)
        if roles is not None:
            stmt = stmt.where(Person.role.in_(roles))
        return list((await self.s.execute(stmt.order_by(Person.unit_id, Person.id))).scalars())

    async def units(self, office_id: int) -> list[Unit]:
        """The office's units in their order."""
        return list((await self.s.execute(select(Unit).where(Unit.office_id == office_id)
                                          .order_by(Unit.sort_order, Unit.id))).scalars())

    async def natural_holder(self, office_id: int, role: Role, unit_id: int | None,
                             exclude: int | None = None) -> Person | None:
        """The official of the role (of the bidang for a Kabid), leaving Plh./Plt. out."""
        return await role_holder(self.s, office_id, role, unit_id, self.now, exclude=exclude,
                                 acting=False)

    async def holder(self, office_id: int, role: Role, unit_id: int | None,
                     exclude: int | None = None) -> Person | None:
        """Who holds the role now: an acting official first, else the official."""
        return await role_holder(self.s, office_id, role, unit_id, self.now, exclude=exclude)

    async def _move_run(self, run: StepRun, to: Person, actor: Person | None, reason: str,
                        why: str, note: str = "") -> None:
        """Give an open step to ``to``: audit row, the new holder gets the button."""
        old = await self.s.get(Person, run.assignee_id) if run.assignee_id else None
        run.assignee_id = to.id
        await self.s.flush()
        cycle = await self.wf.get_cycle(run.cycle_id)
        step = self.wf.sop.step(run.step_no)
        await self.wf._audit("step.reassign", actor, cycle, run=run.id, step=step.number,
                             unit=run.unit_id, to=to.id, reason=reason, note=note,
                             **{"from": old.id if old else None})
        unit = await self.s.get(Unit, run.unit_id) if run.unit_id else None
        where = f" - {unit.name}" if unit else ""
        await self.wf._notify(to, "task_moved", t(
            "a.n_task_to", step=step.number, activity=step.activity,
            period=self.wf.period(cycle), where=where, why=why,
            old=old.name if old else "-", due=self.wf.fmt_due(run.due_at)),
            await self.wf.task_buttons(run))
        if old is not None and old.active and old.id != to.id:
            await self.wf._notify(old, "task_moved", t(
                "a.n_task_from", step=step.number, activity=step.activity,
                period=self.wf.period(cycle), where=where, why=why, new=to.name))

    async def open_runs_of(self, person: Person) -> list[StepRun]:
        return list((await self.s.execute(
            select(StepRun).where(StepRun.assignee_id == person.id,
                                  StepRun.status == StepStatus.OPEN).order_by(StepRun.id)
        )).scalars())

    async def open_items_of(self, person: Person) -> list[CycleIndicator]:
        """Indicators handed to ``person`` in a step-4 run still open."""
        collect = self.wf.sop.first_of_kind("collect").number
        rows = (await self.s.execute(
            select(CycleIndicator).join(StepRun, (StepRun.cycle_id == CycleIndicator.cycle_id)
                                        & (StepRun.unit_id == CycleIndicator.unit_id))
            .where(CycleIndicator.assigned_to_id == person.id, StepRun.step_no == collect,
                   StepRun.status == StepStatus.OPEN).order_by(CycleIndicator.id)
        )).scalars().all()
        return list(dict.fromkeys(rows))

    # ----------------------------------------------------------------- people
    async def add_person(self, actor: Person | None, *, name: str, role: Role,
                         unit_code: str | None = None, nip: str | None = None,
                         rank: str = "", position: str = "",
                         agency_key: str | None = None) -> Person:
        self._require(actor, PEOPLE_ROLES)
        name = (name or "").strip()
        if not name:
            raise InvalidInput(t("a.err_name"))
        nip = (nip or "").strip() or None
        if nip is not None and not re.fullmatch(r"\d{18}", nip.replace(" ", "")):
            raise InvalidInput(t("a.err_nip_format", nip=nip))
        nip = nip.replace(" ", "") if nip else None
        unit = await self.unit_by_code(unit_code) if unit_code else None
        if role in (Role.KABID, Role.STAF) and unit is None:
            raise InvalidInput(t("a.err_unit_needed", role=role_title(role)))
        office = await self.wf.office()
        existing = None
        if nip is not None:
            existing = (await self.s.execute(select(Person).where(
                Person.office_id == office.id, Person.nip == nip))).scalar_one_or_none()
        if existing is not None and existing.active:
            raise InvalidInput(t("a.err_nip_taken", nip=nip, name=existing.name))
        if existing is not None:  # came back (e.g. after a mutasi): reactivated
            person = existing
            person.name, person.role, person.unit_id = name, role, unit.id if unit else None
            person.rank, person.position, person.active = rank, position, True
            person.agency_key = agency_key
            action = "person.reactivate"
        else:
            person = Person(office_id=office.id, unit_id=unit.id if unit else None, name=name,
                            nip=nip, role=role, rank=rank, position=position,
                            agency_key=agency_key, active=True, created_at=self.now)
            self.s.add(person)
            action = "person.add"
        await self.s.flush()
        await self.wf._audit(action, actor, None, person=person.id, name=name, nip=nip,
                             role=role.value, unit=unit.code if unit else None)
        return person

    async def change_person(self, actor: Person | None, person_id: int, *,
                            role: Role | None = None, unit_code: str | None = None,
                            name: str | None = None, rank: str | None = None,
                            position: str | None = None,
                            successor_id: int | None = None) -> tuple[Person, list[StepRun]]:
        """Change role or bidang (or name, rank, jabatan). Open steps the person no longer
        fits go to ``successor_id`` or to the new holder of the step's role."""
        self._require(actor, PEOPLE_ROLES)
        person = await self.person(person_id)
        if not person.active:
            raise WrongState(t("a.err_inactive_person", name=person.name))
        before = {"role": person.role.value, "unit": person.unit_id, "name": person.name,
                  "rank": person.rank, "position": person.position}
        if role is not None:
            person.role = role
        if unit_code is not None:
            person.unit_id = (await self.unit_by_code(unit_code)).id if unit_code else None
        if person.role in (Role.KABID, Role.STAF) and person.unit_id is None:
            raise InvalidInput(t("a.err_unit_needed", role=role_title(person.role)))
        if name is not None and name.strip():
            person.name = name.strip()
        if rank is not None:
            person.rank = rank
        if position is not None:
            person.position = position
        await self.s.flush()
        successor = await self.person(successor_id) if successor_id else None
        moved = []
        for run in await self.open_runs_of(person):
            if await self.may_hold_run(person, run):
                continue
            to = successor or await self.holder(person.office_id, run.role, run.unit_id,
                                                exclude=person.id)
            if successor is None and to is not None and not await self.may_hold_run(to, run):
                to = None  # e.g. a staf outside the Sekretariat for a Sekretariat step
            if to is None:
                raise InvalidInput(t("a.err_no_successor", name=person.name))
            self._check_eligible(to, person)
            await self._check_may_hold(to, run)
            await self._move_run(run, to, actor, "change", t("a.why_change", name=person.name))
            moved.append(run)
        for item in await self.open_items_of(person):
            if person.role != Role.STAF or item.unit_id != person.unit_id:
                item.assigned_to_id = None
        after = {"role": person.role.value, "unit": person.unit_id, "name": person.name,
                 "rank": person.rank, "position": person.position}
        await self.wf._audit("person.change", actor, None, person=person.id, before=before,
                             after=after, moved=[r.id for r in moved])
        return person, moved

    def _check_eligible(self, to: Person, leaving: Person | None = None) -> None:
        if not to.active or to.role not in HOLDER_ROLES or (leaving and to.id == leaving.id):
            raise InvalidInput(t("a.err_successor", name=to.name))

    async def may_hold_run(self, person: Person | None, run: StepRun) -> bool:
        """Whether ``person`` may hold this open step now (``bot.core.authority``)."""
        return await may_hold(self.s, person, self.wf.sop.step(run.step_no), run.unit_id,
                              self.now)

    async def _check_may_hold(self, to: Person, run: StepRun) -> None:
        """Refuse a move to someone who could not press the step's buttons."""
        if not await self.may_hold_run(to, run):
            raise InvalidInput(await cannot_hold_text(self.s, to, self.wf.sop.step(run.step_no),
                                                      run.unit_id))

    async def candidates_for_run(self, run: StepRun,
                                 limit: int | None = None) -> list[Person]:
        """Who may be given this open step now (its holder left out): all of them
        unless ``limit`` is given (the bot pages the list)."""
        office = await self.wf.office()
        exclude = {run.assignee_id} if run.assignee_id else set()
        people = await eligible_people(self.s, office.id, self.wf.sop.step(run.step_no),
                                       run.unit_id, self.now, exclude)
        return people[:limit]

    async def no_candidates_text(self, run: StepRun) -> str:
        step = self.wf.sop.step(run.step_no)
        return t("au.err_no_eligible", step=step.number,
                 who=await who_may_text(self.s, step, run.unit_id))

    async def _fits_all(self, candidate: Person | None, runs: list[StepRun]) -> bool:
        if candidate is None:
            return False
        for run in runs:
            if not await self.may_hold_run(candidate, run):
                return False
        return True

    async def default_successor(self, person: Person) -> Person | None:
        """The first who may hold every open step of ``person``: the acting official for
        the post if there is one, else the Kabid of the bidang (for a staf), else another
        holder of the same post, else the holder of the superior role, else the first
        other person who may (e.g. a staf of the bidang for a Kabid's data entry)."""
        runs = await self.open_runs_of(person)
        first = await self._default_successor(person)
        if not runs or await self._fits_all(first, runs):
            return first
        for other in await self.successor_choices(person, limit=1000):
            return other  # successor_choices keeps only people who fit every step
        return None

    async def _default_successor(self, person: Person) -> Person | None:
        appt = await covering(self.s, person.office_id, person.role, person.unit_id, self.now)
        if appt is not None and appt.acting_person_id != person.id:
            return await self.s.get(Person, appt.acting_person_id)
        if person.role == Role.STAF and person.unit_id is not None:
            kabid = await self.holder(person.office_id, Role.KABID, person.unit_id,
                                      exclude=person.id)
            if kabid is not None:
                return kabid
        same = await self.natural_holder(person.office_id, person.role, person.unit_id,
                                         exclude=person.id) \
            if person.role in (Role.KABID, Role.STAF) else None
        if same is not None:
            return same
        superior = self.sv.config.reminders.escalation.get(person.role.value)
        if superior:
            return await self.holder(person.office_id, Role(superior), None, exclude=person.id)
        return None

    async def successor_choices(self, person: Person,
                                limit: int | None = None) -> list[Person]:
        """The default first, then people of the same bidang, then the leadership; only
        people who may hold every open step of ``person`` (``bot.core.authority``); all of
        them unless ``limit`` is given (the bot pages the list)."""
        runs = await self.open_runs_of(person)
        default = await self._default_successor(person)
        people = (await self.s.execute(select(Person).where(
            Person.office_id == person.office_id, Person.active.is_(True),
            Person.role.in_(HOLDER_ROLES), Person.id != person.id).order_by(Person.id)
        )).scalars().all()
        rank = {Role.KADIS: 1, Role.SEKRETARIS: 2, Role.KASUBAG: 3, Role.KABID: 4, Role.STAF: 5}
        people = sorted(people, key=lambda p: (p.unit_id != person.unit_id, rank[p.role], p.id))
        out = [default] if default is not None and default.id != person.id else []
        out += [p for p in people if default is None or p.id != default.id]
        out = [p for p in out if await self._fits_all(p, runs)]
        return out[:limit]

    async def deactivate(self, actor: Person | None, person_id: int, *,
                         successor_id: int | None = None,
                         reason: str = "mutasi") -> Deactivation:
        """Mutasi or pensiun: open steps and handed indicators go to the successor, the
        Telegram binding and unused invitations are removed; what the person submitted
        and approved stays attributed to them."""
        self._require(actor, PEOPLE_ROLES)
        if reason not in REASONS:
            raise InvalidInput(t("a.err_reason", reasons=", ".join(REASONS)))
        person = await self.person(person_id)
        if actor is not None and actor.id == person.id:
            raise InvalidInput(t("a.err_deactivate_self"))
        if not person.active:
            raise WrongState(t("a.err_inactive_person", name=person.name))
        runs = await self.open_runs_of(person)
        items = await self.open_items_of(person)
        if successor_id:
            successor = await self.person(successor_id)
            self._check_eligible(successor, person)
        else:
            successor = await self.default_successor(person)
        if (runs or items) and successor is None:
            raise InvalidInput(t("a.err_no_successor", name=person.name))
        for run in runs:
            await self._check_may_hold(successor, run)
        why = t("a.why_deactivate", name=person.name, reason=reason)
        for run in runs:
            await self._move_run(run, successor, actor, "deactivate", why)
        for item in items:
            fits = (successor is not None and successor.role == Role.STAF
                    and successor.unit_id == item.unit_id)
            item.assigned_to_id = successor.id if fits else None
            cycle = await self.wf.get_cycle(item.cycle_id)
            await self.wf._audit("data.reassign", actor, cycle, item=item.id,
                                 indicator=item.indicator_id, to=item.assigned_to_id,
                                 reason="deactivate", **{"from": person.id})
        # acting appointments of the person as Plh./Plt. end now (their steps moved above)
        for appt in (await self.s.execute(select(ActingAppointment).where(
                ActingAppointment.acting_person_id == person.id,
                ActingAppointment.cancelled.is_(False),
                ActingAppointment.finished_at.is_(None)))).scalars():
            appt.cancelled, appt.cancelled_at = True, self.now
            appt.cancelled_by_id = actor.id if actor else None
            appt.finished_at = self.now
        await self.wf._notify(person, "deactivated", t("a.n_deactivated", reason=reason))
        person.active = False
        person.telegram_user_id = None
        for inv in (await self.s.execute(select(Invitation).where(
                Invitation.person_id == person.id, Invitation.used_at.is_(None)))).scalars():
            inv.expires_at = self.now
        conv = await self.s.get(Conversation, person.id)
        if conv is not None:
            await self.s.delete(conv)
        await self.s.flush()
        await self.wf._audit("person.deactivate", actor, None, person=person.id,
                             reason=reason, successor=successor.id if successor else None,
                             runs=[r.id for r in runs], items=[i.id for i in items])
        return Deactivation(person, successor, runs, items)

    # ----------------------------------------------------------------- reassign
    async def reassign_run(self, actor: Person | None, run_id: int, to_id: int,
                           note: str = "") -> StepRun:
        """The Kasubag (a step-4 run) or the Sekretaris/Kadis (any step) gives an open
        step to another person."""
        run = await self.wf.get_run(run_id, lock=True)
        if run.status != StepStatus.OPEN:
            raise StaleAction()
        step = self.wf.sop.step(run.step_no)
        if actor is not None:
            self.wf._check_active(actor)
            allowed = actor.role in REASSIGN_ANY or (
                actor.role in REASSIGN_COLLECT and step.kind == "collect")
            if not allowed:
                raise NotAllowed()
        to = await self.person(to_id)
        self._check_eligible(to)
        if to.id == run.assignee_id:
            raise InvalidInput(t("a.err_same_holder", name=to.name))
        await self._check_may_hold(to, run)
        why = t("a.why_reassign", name=actor.name if actor else "admin")
        await self._move_run(run, to, actor, "reassign", why, note)
        return run

    async def reassign_item(self, actor: Person | None, item_id: int,
                            to_id: int | None) -> CycleIndicator:
        """Hand one indicator of an open step-4 run to a staf of its bidang (``None``:
        back to the holder of the run)."""
        if actor is not None:
            self.wf._check_active(actor)
            if actor.role not in REASSIGN_ANY + REASSIGN_COLLECT:
                raise NotAllowed()
        item = await self.s.get(CycleIndicator, item_id)
        if item is None:
            raise NotFound()
        run = await self.wf.collect_run_for(item.cycle_id, item.unit_id)
        if run is None or run.status != StepStatus.OPEN:
            raise StaleAction()
        to = None
        if to_id is not None:
            to = await self.person(to_id)
            if to.role != Role.STAF or not await self.may_hold_run(to, run):
                raise InvalidInput(t("a.err_item_staff", name=to.name))
        old = await self.s.get(Person, item.assigned_to_id) if item.assigned_to_id else None
        item.assigned_to_id = to.id if to else None
        cycle = await self.wf.get_cycle(item.cycle_id)
        ind = await self.s.get(Indicator, item.indicator_id)
        await self.wf._audit("data.reassign", actor, cycle, item=item.id,
                             indicator=item.indicator_id, to=item.assigned_to_id,
                             reason="reassign", **{"from": old.id if old else None})
        new = to or await self.s.get(Person, run.assignee_id)
        await self.wf._notify(new, "item_moved", t(
            "a.n_item_to", indicator=ind.name, period=self.wf.period(cycle),
            name=actor.name if actor else "admin", due=self.wf.fmt_due(run.due_at)),
            step_buttons(StepKind.COLLECT, run.id))
        if old is not None and old.active and (to is None or old.id != to.id):
            await self.wf._notify(old, "item_moved", t(
                "a.n_item_from", indicator=ind.name, period=self.wf.period(cycle),
                new=new.name if new else "-"))
        return item

    async def reassignable_runs(self, actor: Person) -> list[StepRun]:
        """Open steps of active cycles this person may reassign."""
        runs = list((await self.s.execute(
            select(StepRun).join(Cycle, Cycle.id == StepRun.cycle_id)
            .where(StepRun.status == StepStatus.OPEN, Cycle.office_id == actor.office_id)
            .order_by(StepRun.cycle_id, StepRun.step_no, StepRun.unit_id))).scalars())
        if actor.role in REASSIGN_ANY:
            return runs
        if actor.role in REASSIGN_COLLECT:
            return [r for r in runs if self.wf.sop.step(r.step_no).kind == "collect"]
        return []

    # ----------------------------------------------------------------- acting officials
    async def appoint(self, actor: Person | None, *, role: Role, acting_id: int,
                      kind: ActingKind, starts_at: datetime, ends_at: datetime,
                      unit_id: int | None = None, absent_id: int | None = None,
                      decree: str = "") -> ActingAppointment:
        self._require(actor, APPOINT_ROLES)
        if role not in APPOINTABLE:
            raise InvalidInput(t("a.err_role_appoint"))
        if role == Role.KABID and unit_id is None:
            raise InvalidInput(t("a.err_unit_needed", role=role_title(role)))
        unit_id = unit_key(role, unit_id)
        if ends_at <= starts_at:
            raise InvalidInput(t("a.err_range_order"))
        if ends_at <= self.now:
            raise InvalidInput(t("a.err_range_past"))
        office = await self.wf.office()
        title = await self.slot_title(role, unit_id)
        if absent_id is not None:
            absent = await self.person(absent_id)
            if absent.role != role or (role == Role.KABID and absent.unit_id != unit_id):
                raise InvalidInput(t("a.err_absent_role", name=absent.name, title=title))
        else:
            absent = await self.natural_holder(office.id, role, unit_id)
        acting = await self.person(acting_id)
        if absent is not None and acting.id == absent.id:
            raise InvalidInput(t("a.err_self", name=acting.name, title=title))
        if not acting.active or acting.role not in HOLDER_ROLES:
            raise InvalidInput(t("a.err_acting", name=acting.name))
        overlap = await self._overlapping(office.id, role, unit_id, starts_at, ends_at)
        if overlap is not None:
            other = await self.s.get(Person, overlap.acting_person_id)
            raise InvalidInput(t("a.err_overlap", title=title, kind=overlap.kind.label,
                                 name=other.name if other else "-",
                                 range=range_text(overlap.starts_at, overlap.ends_at)))
        away = (await self.s.execute(select(ActingAppointment).where(
            ActingAppointment.absent_person_id == acting.id,
            ActingAppointment.cancelled.is_(False),
            ActingAppointment.starts_at < ends_at, ActingAppointment.ends_at > starts_at)
        )).scalars().first()
        if away is not None:
            raise InvalidInput(t("a.err_acting_away", name=acting.name,
                                 range=range_text(away.starts_at, away.ends_at)))
        appt = ActingAppointment(
            office_id=office.id, role=role, unit_id=unit_id,
            absent_person_id=absent.id if absent else None, acting_person_id=acting.id,
            kind=kind, starts_at=starts_at, ends_at=ends_at, decree=(decree or "").strip(),
            created_by_id=actor.id if actor else None, created_at=self.now)
        self.s.add(appt)
        await self.s.flush()
        await self.wf._audit("acting.appoint", actor, None, appointment=appt.id,
                             role=role.value, unit=unit_id, kind=kind.value, acting=acting.id,
                             absent=absent.id if absent else None,
                             starts=starts_at.isoformat(), ends=ends_at.isoformat(),
                             decree=appt.decree)
        rng = range_text(starts_at, ends_at)
        decree_text = t("a.decree", decree=appt.decree) if appt.decree else ""
        await self.wf._notify(acting, "acting", t(
            "a.n_appointed", kind=kind.label, title=title, range=rng, decree=decree_text,
            absent=absent.name if absent else "-"))
        if absent is not None:
            await self.wf._notify(absent, "acting", t(
                "a.n_appointed_absent", kind=kind.label, title=title, range=rng,
                name=acting.name))
        await self.sync()
        return appt

    async def _overlapping(self, office_id: int, role: Role, unit_id: int | None,
                           starts_at: datetime, ends_at: datetime) -> ActingAppointment | None:
        stmt = select(ActingAppointment).where(
            ActingAppointment.office_id == office_id, ActingAppointment.cancelled.is_(False),
            ActingAppointment.starts_at < ends_at, ActingAppointment.ends_at > starts_at)
        return (await self.s.execute(appointment_slot(stmt, role, unit_id)
                                     .order_by(ActingAppointment.starts_at))).scalars().first()

    async def cancel_appointment(self, actor: Person | None, appt_id: int) -> ActingAppointment:
        self._require(actor, APPOINT_ROLES)
        appt = await self.s.get(ActingAppointment, appt_id)
        if appt is None:
            raise NotFound()
        if appt.cancelled or appt.finished_at is not None or appt.ends_at <= self.now:
            raise StaleAction()
        appt.cancelled, appt.cancelled_at = True, self.now
        appt.cancelled_by_id = actor.id if actor else None
        await self.s.flush()
        await self.wf._audit("acting.cancel", actor, None, appointment=appt.id)
        acting = await self.s.get(Person, appt.acting_person_id)
        title = await self.slot_title(appt.role, appt.unit_id)
        await self.wf._notify(acting, "acting", t("a.n_cancelled", kind=appt.kind.label,
                                                  title=title))
        await self.sync()
        return appt

    async def appointments(self, *, current_only: bool = True) -> list[ActingAppointment]:
        stmt = select(ActingAppointment).where(ActingAppointment.cancelled.is_(False))
        if current_only:
            stmt = stmt.where(ActingAppointment.ends_at > self.now)
        return list((await self.s.execute(stmt.order_by(ActingAppointment.starts_at))).scalars())

    async def sync(self) -> int:
        """Move open steps to acting officials whose range began and back from those whose
        range ended or was cancelled. Idempotent; returns how many steps moved."""
        now = self.now
        moved = 0
        ending = (await self.s.execute(
            select(ActingAppointment).where(
                ActingAppointment.finished_at.is_(None),
                or_(ActingAppointment.cancelled.is_(True), ActingAppointment.ends_at <= now))
            .order_by(ActingAppointment.id).with_for_update(skip_locked=True))).scalars().all()
        # whose roles changed: the runtime re-sets their command menus after the commit
        changed = self.s.info.setdefault(ROLES_CHANGED, set())
        for appt in ending:  # each in its own office's workflow (settings, zone)
            moved += await (await self._of(appt))._finish(appt)
            changed.add(appt.acting_person_id)
        starting = (await self.s.execute(
            select(ActingAppointment).where(
                ActingAppointment.activated_at.is_(None), ActingAppointment.cancelled.is_(False),
                ActingAppointment.starts_at <= now, ActingAppointment.ends_at > now)
            .order_by(ActingAppointment.id).with_for_update(skip_locked=True))).scalars().all()
        for appt in starting:
            moved += await (await self._of(appt))._activate(appt)
            changed.add(appt.acting_person_id)
        return moved

    async def _of(self, appt: ActingAppointment) -> "Administration":
        if self.wf.office_id == appt.office_id:
            return self
        adm = Administration(self.s, self.wf.base, appt.office_id)
        await adm.wf.ready()
        return adm

    def _slot_runs(self, appt: ActingAppointment):
        stmt = select(StepRun).join(Cycle, Cycle.id == StepRun.cycle_id).where(
            Cycle.office_id == appt.office_id, StepRun.status == StepStatus.OPEN,
            StepRun.role == appt.role)
        if appt.role == Role.KABID:
            stmt = stmt.where(StepRun.unit_id == appt.unit_id)
        return stmt.order_by(StepRun.id)

    async def _activate(self, appt: ActingAppointment) -> int:
        acting = await self.s.get(Person, appt.acting_person_id)
        if acting is None or not acting.active:
            return 0
        title = await self.slot_title(appt.role, appt.unit_id)
        why = t("a.why_acting", kind=appt.kind.label, title=title)
        stmt = self._slot_runs(appt)
        if appt.absent_person_id is not None:
            stmt = stmt.where(StepRun.assignee_id == appt.absent_person_id)
        else:  # a vacant post: what its former holder left behind
            stmt = stmt.join(Person, Person.id == StepRun.assignee_id).where(
                Person.active.is_(False))
        runs = list((await self.s.execute(stmt)).scalars())
        for run in runs:
            await self._move_run(run, acting, None, "acting.start", why)
        appt.activated_at = self.now
        await self.wf._audit("acting.start", None, None, appointment=appt.id,
                             acting=acting.id, absent=appt.absent_person_id,
                             runs=[r.id for r in runs])
        return len(runs)

    async def _finish(self, appt: ActingAppointment) -> int:
        appt.finished_at = self.now
        if appt.activated_at is None:
            return 0
        runs = list((await self.s.execute(
            self._slot_runs(appt).where(StepRun.assignee_id == appt.acting_person_id)
        )).scalars())
        title = await self.slot_title(appt.role, appt.unit_id)
        why = t("a.why_acting_end", kind=appt.kind.label, title=title)
        absent = await self.s.get(Person, appt.absent_person_id) \
            if appt.absent_person_id else None
        back = []
        for run in runs:
            to = absent if await self.may_hold_run(absent, run) else \
                await self.holder(appt.office_id, appt.role, run.unit_id,
                                  exclude=appt.acting_person_id)
            if not await self.may_hold_run(to, run):
                to = next(iter(await self.candidates_for_run(run, limit=1)), None)
            if to is None:
                log.warning("no holder to give run %s back to after appointment %s",
                            run.id, appt.id)
                continue
            await self._move_run(run, to, None, "acting.end", why)
            back.append(run.id)
        await self.wf._audit("acting.end", None, None, appointment=appt.id,
                             acting=appt.acting_person_id, runs=back,
                             cancelled=appt.cancelled)
        acting = await self.s.get(Person, appt.acting_person_id)
        if acting is not None and acting.active and not appt.cancelled:
            await self.wf._notify(acting, "acting", t("a.n_acting_over", kind=appt.kind.label,
                                                      title=title, count=len(back)))
        return len(back)

    # ----------------------------------------------------------------- roster
    async def appointment_line(self, appt: ActingAppointment) -> str:
        acting = await self.s.get(Person, appt.acting_person_id)
        absent = await self.s.get(Person, appt.absent_person_id) \
            if appt.absent_person_id else None
        running = appt.starts_at <= self.now < appt.ends_at
        return t("a.appt_line", kind=appt.kind.label,
                 title=await self.slot_title(appt.role, appt.unit_id),
                 name=acting.name if acting else "-",
                 absent=absent.name if absent else "-",
                 range=range_text(appt.starts_at, appt.ends_at),
                 state=t("a.appt_running") if running else t("a.appt_planned"),
                 decree=t("a.decree", decree=appt.decree) if appt.decree else "")

    async def roster_text(self, actor: Person | None) -> str:
        if actor is not None:
            self._require(actor, ROSTER_ROLES)
        office = await self.wf.office()
        units = list((await self.s.execute(select(Unit).where(Unit.office_id == office.id)
                                           .order_by(Unit.sort_order, Unit.id))).scalars())
        people = list((await self.s.execute(select(Person).where(
            Person.office_id == office.id).order_by(Person.id))).scalars())
        appts = await self.appointments()
        acting_now = {}
        for a in appts:
            if a.starts_at <= self.now < a.ends_at:
                acting_now.setdefault(a.acting_person_id, []).append(a)
                if a.absent_person_id:
                    acting_now.setdefault(-a.absent_person_id, []).append(a)
        order = {Role.KADIS: 0, Role.SEKRETARIS: 1, Role.KASUBAG: 2, Role.KABID: 3,
                 Role.STAF: 4, Role.ADMIN: 5, Role.CONTACT: 6}
        active = [p for p in people if p.active]
        lines = [t("a.roster_head", office=office.name, count=len(active),
                   registered=sum(1 for p in active if p.telegram_user_id))]
        groups = [(None, t("a.roster_no_unit"))] + [(u.id, u.name) for u in units]
        for unit_id, name in groups:
            members = sorted((p for p in active if p.unit_id == unit_id),
                             key=lambda p: (order[p.role], p.name))
            if not members:
                continue
            lines.append(f"\n<b>{t('a.roster_group', name=name)}</b>")
            for p in members:
                state = t("a.reg_yes") if p.telegram_user_id else t("a.reg_no")
                notes = []
                for a in acting_now.get(p.id, []):
                    notes.append(t("a.roster_acting", kind=a.kind.label,
                                   title=await self.slot_title(a.role, a.unit_id)))
                for a in acting_now.get(-p.id, []):
                    acting = await self.s.get(Person, a.acting_person_id)
                    notes.append(t("a.roster_absent", kind=a.kind.label, name=acting.name))
                lines.append(t("a.roster_line", name=p.name, role=role_title(p.role),
                               state=state) + "".join(notes))
        inactive = len(people) - len(active)
        if inactive:
            lines.append("\n" + t("a.roster_inactive", count=inactive))
        if appts:
            lines.append("\n<b>" + t("a.appts_head") + "</b>")
            for a in appts:
                lines.append(await self.appointment_line(a))
        return "\n".join(lines)


#: ``session.info`` key: the ids of the people whose acting roles ``sync`` started or
#: ended in that session
ROLES_CHANGED = "acting_roles_changed"


async def sync_acting(session: AsyncSession, services: Services) -> int:
    """The deadline-job task: start and end acting appointments (see module doc)."""
    return await Administration(session, services).sync()


__all__ = [
    "APPOINTABLE", "Administration", "Deactivation", "day_range",
    "parse_range", "range_text", "sync_acting", "WorkflowError",
]
