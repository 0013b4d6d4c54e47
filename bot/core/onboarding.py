"""One-time invitations: a code binds a Telegram account to an invited person."""
from __future__ import annotations

import functools
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import audit
from models import Invitation, Outbox, Person
from models.enums import OutboxStatus

CODE_BYTES = 9  # 12 URL-safe characters; Telegram allows up to 64 in a deep link


class InvitationError(Exception):
    """The code cannot be used; ``reason`` is unknown, used, expired or taken."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def create_invitation(session: AsyncSession, person: Person, *, now: datetime,
                            valid_days: int) -> Invitation:
    """A new code for ``person``; earlier unused codes of theirs stop working."""
    for old in (await session.execute(
        select(Invitation).where(Invitation.person_id == person.id,
                                 Invitation.used_at.is_(None))
    )).scalars():
        old.expires_at = now
    inv = Invitation(person_id=person.id, code=secrets.token_urlsafe(CODE_BYTES),
                     created_at=now, expires_at=now + timedelta(days=valid_days))
    session.add(inv)
    await session.flush()
    return inv


def deep_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username or '<username_bot>'}?start={code}"


async def redeem(session: AsyncSession, code: str, telegram_user_id: int, *,
                 now: datetime) -> Person:
    """Bind the account; raises ``InvitationError`` and changes nothing when it can't."""
    inv = (await session.execute(
        select(Invitation).where(Invitation.code == code).with_for_update()
    )).scalar_one_or_none()
    if inv is None:
        raise InvitationError("unknown")
    if inv.used_at is not None:
        raise InvitationError("used")
    if inv.expires_at <= now:
        raise InvitationError("expired")
    person = await session.get(Person, inv.person_id)
    if person is None or not person.active:
        raise InvitationError("unknown")
    # one account may hold a person in each of several offices, not two in one office
    other = (await session.execute(
        select(Person).where(Person.telegram_user_id == telegram_user_id,
                             Person.office_id == person.office_id)
    )).scalars().first()
    if other is not None and other.id != person.id:
        raise InvitationError("taken")
    inv.used_at = now
    inv.used_by_telegram_id = telegram_user_id
    person.telegram_user_id = telegram_user_id
    # messages queued before the person registered can now be delivered
    for row in (await session.execute(
        select(Outbox).where(Outbox.person_id == person.id, Outbox.chat_id.is_(None),
                             Outbox.status == OutboxStatus.PENDING)
    )).scalars():
        row.chat_id = telegram_user_id
        row.next_attempt_at = now
    await audit.record(session, "person.register", actor_id=person.id, cycle_id=None, at=now,
                       telegram_user_id=telegram_user_id)
    return person


@functools.cache
def _person_with_conversation():
    """Built once (every update reads the person with it): its construction and cache
    key cost more CPU than running it."""
    from models import Conversation

    person, conv = Person.__table__, Conversation.__table__
    return (select(person, conv)  # the two tables' columns: models.session.core_objects
            .outerjoin(conv, conv.c.person_id == person.c.id)
            .where(person.c.telegram_user_id == bindparam("telegram_user_id"))
            .order_by(person.c.active.desc(), conv.c.person_id.is_(None),
                      conv.c.updated_at.desc(), person.c.id))


async def person_with_conversation(session: AsyncSession, telegram_user_id: int,
                                   target: tuple[str, int] | None = None) -> Person | None:
    """The person of this Telegram account, read with their conversation in one
    statement: the session keeps both, so reading the conversation later in this session
    reads no row again (``session.info["loaded"]`` holds it: the identity map holds
    objects weakly).

    An account bound in several offices: the person of the office that ``target`` (a
    button's object or office, ``bot.callbacks.target``, ``office_of``) belongs to; else
    an active one in a conversation most recently; else the first bound."""
    from models import Conversation
    from models.session import core_objects

    rows = await core_objects(session, _person_with_conversation(),
                              {"telegram_user_id": telegram_user_id}, Person, Conversation)
    if not rows:
        return None
    row = rows[0]
    if len(rows) > 1 and target is not None:
        office_id = await office_of(session, *target)
        row = next((r for r in rows if r[0].office_id == office_id), row)
    session.info.setdefault("loaded", []).append(row[1])
    return row[0]


async def save_conversation(session: AsyncSession, conv) -> None:
    """Write what changed of a stored conversation now, in one Core UPDATE (the columns
    changed since it was read, and ``updated_at``, as the unit of work's flush would),
    and keep the object as written (``models.session.as_written``): that flush of one
    changed row costs about three times the statement, and an update writes its
    conversation each time. Nothing changed: nothing written."""
    from sqlalchemy import inspect as sa_inspect
    from sqlalchemy.orm.attributes import set_committed_value
    from sqlalchemy.orm.exc import StaleDataError

    from models.base import utcnow
    from models.session import as_written, core_rowcount

    state = sa_inspect(conv)
    changed = tuple(c for c in _CONVERSATION_COLUMNS if state.attrs[c].history.has_changes())
    if not changed:
        return
    values = {c: getattr(conv, c) for c in changed}
    values["updated_at"] = utcnow()
    for key, value in values.items():
        set_committed_value(conv, key, value)
    as_written(session, conv)
    params = {f"v_{key}": value for key, value in values.items()}
    if await core_rowcount(session, _update_conversation(tuple(values)),
                           {"pid": conv.person_id, **params}) != 1:
        raise StaleDataError(f"the conversation of person {conv.person_id} is gone")


# what a conversation's update may change (its key does not; updated_at follows)
_CONVERSATION_COLUMNS = ("kind", "state", "data", "message_id")


@functools.cache
def _update_conversation(columns: tuple[str, ...]):
    from sqlalchemy import update

    from models import Conversation

    table = Conversation.__table__
    return (update(table).where(table.c.person_id == bindparam("pid"))
            .values({c: bindparam(f"v_{c}") for c in columns}))


async def office_of(session: AsyncSession, kind: str, object_id: int) -> int | None:
    """The office a button's object belongs to (a step run, a cycle, a delivery, a
    person, an acting appointment), or the office a button names."""
    from models import ActingAppointment, Cycle, Delivery, StepRun

    if kind == "office":
        return object_id
    if kind == "person":
        stmt = select(Person.office_id).where(Person.id == object_id)
    elif kind == "appointment":
        stmt = select(ActingAppointment.office_id).where(ActingAppointment.id == object_id)
    elif kind == "cycle":
        stmt = select(Cycle.office_id).where(Cycle.id == object_id)
    elif kind == "run":
        stmt = (select(Cycle.office_id).join(StepRun, StepRun.cycle_id == Cycle.id)
                .where(StepRun.id == object_id))
    elif kind == "delivery":
        stmt = (select(Cycle.office_id).join(Delivery, Delivery.cycle_id == Cycle.id)
                .where(Delivery.id == object_id))
    else:
        return None
    return (await session.execute(stmt)).scalar_one_or_none()


async def people_of_account(session: AsyncSession, telegram_user_id: int) -> list[Person]:
    """Every person this Telegram account is bound to, one per office."""
    return list((await session.execute(
        select(Person).where(Person.telegram_user_id == telegram_user_id)
        .order_by(Person.office_id, Person.id))).scalars())


async def account_roles(session: AsyncSession, telegram_user_id: int,
                        at: datetime) -> list[tuple[Person, frozenset]]:
    """Each active person this account is bound to (one per office, by office), with the
    roles they may act in at ``at``: their own and those they hold as Plh./Plt."""
    from bot.core.authority import acting_roles

    return [(p, frozenset({p.role} | await acting_roles(session, p, at)))
            for p in await people_of_account(session, telegram_user_id) if p.active]


async def accounts_with_several_roles(session: AsyncSession, at: datetime) -> list[int]:
    """The accounts whose command menu is more than their one role's: bound to active
    people in several offices, or acting as Plh./Plt. at ``at``."""
    from sqlalchemy import func

    from models import ActingAppointment

    several = select(Person.telegram_user_id).where(
        Person.active.is_(True), Person.telegram_user_id.is_not(None)).group_by(
        Person.telegram_user_id).having(func.count(Person.id) > 1)
    acting = select(Person.telegram_user_id).join(
        ActingAppointment, ActingAppointment.acting_person_id == Person.id).where(
        Person.active.is_(True), Person.telegram_user_id.is_not(None),
        ActingAppointment.cancelled.is_(False), ActingAppointment.starts_at <= at,
        ActingAppointment.ends_at > at)
    ids = set((await session.execute(several)).scalars())
    ids |= set((await session.execute(acting)).scalars())
    return sorted(ids)


async def office_heading(session: AsyncSession, person: Person) -> str:
    """The line naming the person's office on a card, when their account is bound in
    several offices (else ""); read once per account and session."""
    from bot.texts import t
    from models import Office

    if person.telegram_user_id is None:
        return ""
    known: dict = session.info.setdefault("several_offices", {})
    key = (person.telegram_user_id, person.office_id)
    if key not in known:
        other = (await session.execute(
            select(Person.id).where(Person.telegram_user_id == person.telegram_user_id,
                                    Person.office_id != person.office_id).limit(1))).first()
        known[key] = other is not None
    if not known[key]:
        return ""
    office = await session.get(Office, person.office_id)
    return t("n.office_head", office=office.name) if office else ""


async def person_by_telegram(session: AsyncSession, telegram_user_id: int) -> Person | None:
    """The account's person (of several offices: the first bound, active first)."""
    return (await session.execute(
        select(Person).where(Person.telegram_user_id == telegram_user_id)
        .order_by(Person.active.desc(), Person.id)
    )).scalars().first()
