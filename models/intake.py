"""The durable intake: every Telegram update as it arrived (the inbox), and the group
chats the bot has told that it works only in private chats."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class GroupChat(Base):
    """A group, supergroup or channel the bot was told about once (never office data)."""

    __tablename__ = "group_chat"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    chat_type: Mapped[str] = mapped_column(String(20))
    told_at: Mapped[datetime] = mapped_column(default=utcnow)
