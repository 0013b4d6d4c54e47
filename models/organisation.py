"""The office, its divisions (bidang), its people and their invitations."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint, event, inspect, text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, enum_column, utcnow
from models.enums import Role


class Office(Base):
    __tablename__ = "office"
    # the counted-up settings_version comes back with the UPDATE (RETURNING): readable
    # after a flush without a query (async sessions load nothing lazily)
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    regency: Mapped[str] = mapped_column(String(200), default="")
    place: Mapped[str] = mapped_column(String(100), default="")
    unit_code: Mapped[str] = mapped_column(String(40), default="")
    example_data: Mapped[bool] = mapped_column(default=False)
    # the office's own settings over config.toml's defaults, section by section
    # ({"calendar": {"timezone": "Asia/Makassar"}, "numbering": {...}}): see
    # ``bot.config.office_config``; set from the office's set-up workbook
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    # one more at each change of ``settings`` (:func:`_settings_changed`): a process that
    # keeps the office's settings parsed (``Services.cached_office``) compares it
    settings_version: Mapped[int] = mapped_column(default=1, server_default="1")


#: PostgreSQL NOTIFY channel: an office's settings changed (payload: the office id), sent
#: with the change's commit; every bot process listens (bot/telegram/processes.py)
OFFICE_CHANNEL = "sopbot_office"


@event.listens_for(Office, "before_update")
def _settings_changed(mapper, connection, target: Office) -> None:
    """A change of ``settings`` (a set-up workbook imported, by the bot or the CLI) counts
    ``settings_version`` up in the same UPDATE (an SQL expression: two imports at once
    give two versions) and, on PostgreSQL, tells every process at its commit."""
    if not inspect(target).attrs.settings.history.has_changes():
        return
    target.settings_version = Office.settings_version + 1
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:c, :p)"),
                           {"c": OFFICE_CHANNEL, "p": str(target.id)})


class Unit(Base):
    """A bidang (or the Sekretariat) of the office."""

    __tablename__ = "unit"
    __table_args__ = (UniqueConstraint("office_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    is_secretariat: Mapped[bool] = mapped_column(default=False)
    sort_order: Mapped[int] = mapped_column(default=0)


class Person(Base):
    """A person in one office. One Telegram account may be bound to a person in each of
    several offices (a Bappeda contact for all of them, a civil servant moved to another
    office), never to two people of one office."""

    __tablename__ = "person"
    __table_args__ = (UniqueConstraint("office_id", "nip"),
                      UniqueConstraint("office_id", "telegram_user_id"),
                      Index("ix_person_telegram_user_id", "telegram_user_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    name: Mapped[str] = mapped_column(String(200))
    nip: Mapped[str | None] = mapped_column(String(30))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    rank: Mapped[str] = mapped_column(String(100), default="")  # pangkat/golongan
    position: Mapped[str] = mapped_column(String(200), default="")  # jabatan
    agency_key: Mapped[str | None] = mapped_column(String(40))  # for role kontak
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    unit: Mapped[Unit | None] = relationship(lazy="raise")


class Invitation(Base):
    """A one-time code that binds a Telegram account to a person."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_telegram_id: Mapped[int | None] = mapped_column(BigInteger)
