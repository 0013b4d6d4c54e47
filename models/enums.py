"""Enumerations shared by the models, the workflow engine and the measurement code.

Values are stored as their lowercase string in the database (see ``models.base``).
"""
from __future__ import annotations

import enum


class Role(enum.StrEnum):
    KADIS = "kadis"
    SEKRETARIS = "sekretaris"
    KASUBAG = "kasubag"
    KABID = "kabid"
    STAF = "staf"
    ADMIN = "admin"
    CONTACT = "kontak"  # a contact person at a receiving agency (OPD terkait)


class IndicatorLevel(enum.StrEnum):
    TUJUAN = "tujuan"
    SASARAN = "sasaran"
    PROGRAM = "program"
    KEGIATAN = "kegiatan"


class Polarity(enum.StrEnum):
    HIGHER = "higher"  # semakin tinggi semakin baik
    LOWER = "lower"  # semakin rendah semakin baik


class LowerFormula(enum.StrEnum):
    """How capaian is computed for a lower-is-better indicator."""

    MIRROR = "mirror"  # (2T - R) / T x 100 %
    RATIO = "ratio"  # T / R x 100 %


class ValueType(enum.StrEnum):
    NUMERIC = "numeric"
    PERCENT = "percent"
    TEXT = "text"


class CycleKind(enum.StrEnum):
    QUARTERLY = "quarterly"  # triwulan
    ANNUAL = "annual"  # tahunan


class CycleStatus(enum.StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class StepStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    RETURNED = "returned"  # sent back; a new run of the earlier step is opened
    SKIPPED = "skipped"  # e.g. a bidang closed as missing by the Kasubag
    CANCELLED = "cancelled"


class DocumentStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    INITIALLED = "initialled"
    SIGNED = "signed"
    NUMBERED = "numbered"
    ARCHIVED = "archived"
    SUPERSEDED = "superseded"
    RETURNED = "returned"


class ApprovalAction(enum.StrEnum):
    PARAF = "paraf"
    SIGN = "sign"
    RETURN = "return"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    RECEIVED = "received"
