"""Stored files, document versions, approvals, the agenda register, deliveries."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger, ForeignKey, Index, JSON, String, Text, UniqueConstraint, event, text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, enum_column, utcnow
from models.enums import ApprovalAction, DeliveryStatus, DocumentStatus


class StoredFile(Base):
    """A file in the storage folder, named by its sha256."""

    __tablename__ = "stored_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int]
    mime_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    filename: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Document(Base):
    """One version of a cycle's document set (workbook, PDF, chart)."""

    __tablename__ = "document"
    __table_args__ = (UniqueConstraint("cycle_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycle.id"))
    version: Mapped[int]
    status: Mapped[DocumentStatus] = mapped_column(
        enum_column(DocumentStatus), default=DocumentStatus.DRAFT
    )
    sha256: Mapped[str] = mapped_column(String(64))  # sha256 of this version's PDF file
    workbook_file_id: Mapped[int | None] = mapped_column(ForeignKey("stored_file.id"))
    pdf_file_id: Mapped[int | None] = mapped_column(ForeignKey("stored_file.id"))
    chart_file_id: Mapped[int | None] = mapped_column(ForeignKey("stored_file.id"))
    source: Mapped[str] = mapped_column(String(20), default="compiled")  # or "uploaded"
    verification_code: Mapped[str | None] = mapped_column(String(20), unique=True)
    # the final (numbered) version: sha256 of the PDF of the version that was signed
    approved_sha256: Mapped[str | None] = mapped_column(String(64))
    # the final version: "PAdES B-B; <certificate subject>; sha256 <fingerprint>", or ""
    signature: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Approval(Base):
    """Paraf, signature or return of exactly one document version."""

    __tablename__ = "approval"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("document.id"))
    step_run_id: Mapped[int] = mapped_column(ForeignKey("step_run.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    action: Mapped[ApprovalAction] = mapped_column(enum_column(ApprovalAction))
    reason: Mapped[str] = mapped_column(Text, default="")
    document_sha256: Mapped[str] = mapped_column(String(64))  # of the PDF shown
    workbook_sha256: Mapped[str] = mapped_column(String(64), default="")  # of the workbook
    acting_as: Mapped[str] = mapped_column(String(20), default="")  # "Plh."/"Plt."
    # the capacity in which the person acted: "Kepala Dinas", "Plh. Kepala Dinas", ...
    capacity: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LetterCounter(Base):
    """The last sequence number of the agenda register, per office and year."""

    __tablename__ = "letter_counter"

    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last_sequence: Mapped[int] = mapped_column(default=0)


class LetterNumber(Base):
    """An entry of the agenda register (buku agenda surat)."""

    __tablename__ = "letter_number"
    __table_args__ = (
        UniqueConstraint("office_id", "year", "sequence"),
        UniqueConstraint("office_id", "number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    year: Mapped[int]
    sequence: Mapped[int]
    number: Mapped[str] = mapped_column(String(100))
    letter_date: Mapped[date]
    subject: Mapped[str] = mapped_column(Text, default="")
    recipient: Mapped[str] = mapped_column(Text, default="")
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycle.id"))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("document.id"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """The documents' delivery to one agency (OPD terkait) and its receipt."""

    __tablename__ = "delivery"
    __table_args__ = (UniqueConstraint("cycle_id", "agency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycle.id"))
    agency_key: Mapped[str] = mapped_column(String(40))
    agency_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_column(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    contact_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    sent_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    received_by: Mapped[str] = mapped_column(String(200), default="")
    receipt_file_id: Mapped[int | None] = mapped_column(ForeignKey("stored_file.id"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))


class CompileJob(Base):
    """A build of documents asked for in an update: recorded, and committed, with it;
    the documents are built in the background and the result is committed in its own
    transaction (``bot.core.compiler``). One not finished when the bot stopped is resumed
    at the next start. ``kind``: "compiled" (a press of "Susun dokumen", step 6),
    "uploaded" (an edited workbook sent back at step 6: ``payload`` holds its figures and
    warnings, as read in the update) or "numbered" (a press of "Beri nomor", step 9: the
    number is given with the final version, in the job's transaction) or "tte_signed" (the
    passphrase of a TTE gateway signature at step 8: the numbered final version is built
    and signed by the gateway outside any transaction, then approval, number and final
    version commit together; the passphrase itself is held in the memory of the process
    that recorded the job, never in ``payload``)."""

    __tablename__ = "compile_job"
    __table_args__ = (Index("ix_compile_job_open", "finished_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("step_run.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # the progress message
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    document_id: Mapped[int | None] = mapped_column(ForeignKey("document.id"))
    error: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(20), default="compiled", server_default="compiled")
    payload: Mapped[dict | None] = mapped_column(JSON)
    # PostgreSQL, several processes: the process building the job ("host:pid:random",
    # bot/telegram/processes.py); taken over when that process is not alive
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]


#: PostgreSQL NOTIFY channel: a compile job to take (recorded, or its process died)
JOB_CHANNEL = "sopbot_jobs"


@event.listens_for(CompileJob, "after_insert")
def _job_recorded(mapper, connection, target: CompileJob) -> None:
    """On PostgreSQL every process is told at the commit that records the job: an idle
    one takes it (the one that got the press may be building another)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:c, '')"), {"c": JOB_CHANNEL})
