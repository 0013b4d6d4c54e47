"""One-time invitations: a code binds a Telegram account to an invited person."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
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
    other = (await session.execute(
        select(Person).where(Person.telegram_user_id == telegram_user_id)
    )).scalar_one_or_none()
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


async def person_with_conversation(session: AsyncSession, telegram_user_id: int
                                   ) -> Person | None:
    """The person of this Telegram account, read with their conversation in one
    statement: the session keeps both, so reading the conversation later in this session
    reads no row again (``session.info["loaded"]`` holds it: the identity map holds
    objects weakly)."""
    from models import Conversation

    row = (await session.execute(
        select(Person, Conversation)
        .outerjoin(Conversation, Conversation.person_id == Person.id)
        .where(Person.telegram_user_id == telegram_user_id))).first()
    if row is None:
        return None
    session.info.setdefault("loaded", []).append(row[1])
    return row[0]


async def person_by_telegram(session: AsyncSession, telegram_user_id: int) -> Person | None:
    return (await session.execute(
        select(Person).where(Person.telegram_user_id == telegram_user_id)
    )).scalar_one_or_none()
