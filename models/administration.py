"""Office administration: acting officials (Pelaksana Harian / Pelaksana Tugas)."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, enum_column, utcnow
from models.enums import Role


class ActingKind(enum.StrEnum):
    PLH = "plh"  # Pelaksana Harian: the official is temporarily absent
    PLT = "plt"  # Pelaksana Tugas: the post is vacant or the official is away for long

    @property
    def label(self) -> str:
        return "Plh." if self is ActingKind.PLH else "Plt."


class ActingAppointment(Base):
    """A Plh. or Plt. for one role (for a Kabid: of one bidang) over a WIB date range.

    ``activated_at`` is set when the open tasks of the role were moved to the acting
    person, ``finished_at`` when they were moved back (range over or cancelled); the
    job ``bot.core.administration.sync_acting`` does both, so a restart re-derives them.
    """

    __tablename__ = "acting_appointment"
    __table_args__ = (Index("ix_acting_appointment_role_range", "role", "starts_at", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))  # for a Kabid
    absent_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    acting_person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    kind: Mapped[ActingKind] = mapped_column(enum_column(ActingKind))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]  # exclusive
    decree: Mapped[str] = mapped_column(String(100), default="")  # nomor surat perintah
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled: Mapped[bool] = mapped_column(default=False)
    cancelled_at: Mapped[datetime | None]
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    activated_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
