"""Append-only audit log, the outbox of messages, reminders (the inbox: models/intake.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger, ForeignKey, Index, JSON, SmallInteger, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, enum_column, utcnow
from models.enums import OutboxStatus


class AuditLog(Base):
    """One state change; ``hash`` chains each row to the one before it."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycle.id"))
    action: Mapped[str] = mapped_column(String(60))
    payload: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """A single row locked while appending, so the chain has no forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_hash: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(default=0)
    # "sha256", or "hmac-sha256" from row ``keyed_from`` on (SOPBOT_AUDIT_KEY, bot/core/audit.py)
    mode: Mapped[str] = mapped_column(String(20), default="sha256", server_default="sha256")
    keyed_from: Mapped[int | None] = mapped_column(default=None)
    key_id: Mapped[str | None] = mapped_column(String(16), default=None)  # which key


class Outbox(Base):
    """A message to a person, written in the transaction that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "status", "next_attempt_at"),
        Index("ix_outbox_chat_order", "chat_id", "status", "id"),
        Index("ix_outbox_ref", "ref", "chat_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[OutboxStatus] = mapped_column(
        enum_column(OutboxStatus), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # why Telegram refused the row in every form (status failed); the admin was told
    failed_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    claimed_by: Mapped[str] = mapped_column(String(64), default="")
    # higher goes first: a reply to what a person just did (1) before bulk reminders (0)
    priority: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    # what the message's buttons act on ("run:12", "col:3:4", "dlv:7"; "" for none):
    # when it no longer applies, ``bot.core.outbox.retire`` removes the keyboards (and the
    # sender drops a row not yet sent)
    ref: Mapped[str] = mapped_column(String(60), default="", server_default="")


class Reminder(Base):
    """A reminder point of a step run, recorded before its message is queued."""

    __tablename__ = "reminder"
    __table_args__ = (UniqueConstraint("step_run_id", "kind", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    step_run_id: Mapped[int] = mapped_column(ForeignKey("step_run.id"))
    kind: Mapped[str] = mapped_column(String(20))  # share, lastday, due, escalate
    level: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime]
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))


class ReceiptReminder(Base):
    """A reminder to a receiving agency's contact that its receipt of the documents
    (step 11) is still awaited. The agency's own time: never an escalation inside the
    office. ``level`` n is the n-th reminder of that delivery."""

    __tablename__ = "receipt_reminder"
    __table_args__ = (UniqueConstraint("delivery_id", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("delivery.id"))
    level: Mapped[int]
    due_at: Mapped[datetime]
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
