"""The durable intake: every Telegram update as it arrived (the inbox), and the group
chats the bot has told that it works only in private chats."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Inbox(Base):
    """A Telegram update as it arrived, committed before Telegram is told it arrived
    (polling: before the next ``getUpdates`` offset; webhook: before the HTTP 200).
    ``processed_at`` is set in the same transaction as the handlers' own writes."""

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_unprocessed", "processed_at", "update_id"),)

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[dict] = mapped_column(JSON)
    # whose update: the chat (a person's private chat id is their user id), else the user
    chat_key: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    error: Mapped[str] = mapped_column(Text, default="")  # a handler's error, if any
    # PostgreSQL, several processes: the process that will process the row
    # ("host:pid:random", bot/telegram/processes.py); free again when it dies
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]


class GroupChat(Base):
    """A group, supergroup or channel the bot was told about once (never office data)."""

    __tablename__ = "group_chat"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    chat_type: Mapped[str] = mapped_column(String(20))
    told_at: Mapped[datetime] = mapped_column(default=utcnow)
