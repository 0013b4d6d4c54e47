"""Limits on what people upload.

* An .xlsx (the edited measurement workbook of step 6, the set-up workbook) is checked
  for its uncompressed size and cell count before openpyxl opens it
  (:func:`reports.xlsx_limits.check_xlsx`), then read in read-only mode; both run in a
  worker thread, so the event loop keeps answering other people meanwhile.
* What a person makes the bot store counts against a quota per person per cycle
  (``[uploads] quota_mb_per_cycle``, ``quota_files_per_cycle``): the evidence they added
  and the files (workbook, PDF, chart) of every version rebuilt from a workbook they sent
  back at step 6, by the sizes of the stored files. An upload over it is refused before
  anything is written. The incoming letter (one per cycle) and the delivery receipts (one
  per delivery) are bounded by the workflow itself and do not count.
* A cycle keeps at most ``[uploads] max_document_versions`` compiled or uploaded document
  versions; a further "Susun ulang" or edited workbook is refused before anything is
  built or stored (the final numbered version is never refused).
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.texts import t
from bot.core.errors import WorkflowError
from models import Document, Evidence, StoredFile, Submission
from reports.xlsx_limits import XlsxLimits, XlsxTooLarge, check_xlsx

if TYPE_CHECKING:
    from models.enums import ValueType
    from reports.workbook import WorkbookReadResult

MB = 1024 * 1024


def xlsx_limits(cfg: Config) -> XlsxLimits:
    up = cfg.uploads
    return XlsxLimits(max_uncompressed_bytes=up.max_xlsx_uncompressed_mb * MB,
                      max_cells=up.max_xlsx_cells)


def _mb(size: int) -> str:
    return f"{size / MB:.1f}".replace(".", ",")


def _count(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def too_large_text(exc: XlsxTooLarge) -> str:
    """The Indonesian message for a workbook over the upload limits."""
    if exc.kind == "bytes":
        return t("u.xlsx_too_large_bytes", size=_mb(exc.amount), limit=_mb(exc.limit))
    return t("u.xlsx_too_many_cells", limit=_count(exc.limit))


def read_measurement_upload(path: Path, codes: Collection[str],
                            types: Mapping[str, ValueType], limits: XlsxLimits
                            ) -> WorkbookReadResult:
    """The edited workbook of step 6: limits first, then the read-only reader. Blocking;
    run it with ``asyncio.to_thread``. Raises ``XlsxTooLarge`` or ``WorkbookError``."""
    from reports.workbook import read_workbook

    check_xlsx(path, limits)
    return read_workbook(path, codes, types)


class QuotaExceeded(WorkflowError):
    """An upload over the person's quota for the cycle (``message`` in Indonesian)."""


class VersionLimitReached(QuotaExceeded):
    """A cycle already holds ``[uploads] max_document_versions`` versions."""


#: the document versions a person makes the bot build from their own upload
UPLOADED = "uploaded"
#: the versions the version cap counts (the numbered final one is not refused)
CAPPED_SOURCES = ("compiled", UPLOADED)


async def usage(session: AsyncSession, person_id: int, cycle_id: int) -> tuple[int, int]:
    """(bytes, files) ``person_id`` made the bot store in ``cycle_id``: their evidence and
    the workbook, PDF and chart of each version rebuilt from a workbook they sent back
    (a file shared by two versions counts twice)."""
    size, files = (await session.execute(
        select(func.coalesce(func.sum(StoredFile.size), 0), func.count(Evidence.id))
        .select_from(Evidence)
        .join(StoredFile, StoredFile.id == Evidence.file_id)
        .join(Submission, Submission.id == Evidence.submission_id)
        .where(Evidence.added_by_id == person_id, Submission.cycle_id == cycle_id))).one()
    doc_size, doc_files = (await session.execute(
        select(func.coalesce(func.sum(StoredFile.size), 0), func.count(StoredFile.id))
        .select_from(Document)
        .join(StoredFile, or_(StoredFile.id == Document.workbook_file_id,
                              StoredFile.id == Document.pdf_file_id,
                              StoredFile.id == Document.chart_file_id))
        .where(Document.created_by_id == person_id, Document.cycle_id == cycle_id,
               Document.source == UPLOADED))).one()
    return int(size) + int(doc_size), int(files) + int(doc_files)


async def check_quota(session: AsyncSession, cfg: Config, person_id: int, cycle_id: int,
                      size: int, files: int = 1) -> None:
    """Raise :class:`QuotaExceeded` when ``files`` more files of ``size`` bytes in all
    would take the person past their quota for the cycle."""
    used, count = await usage(session, person_id, cycle_id)
    up = cfg.uploads
    if count + files > up.quota_files_per_cycle:
        raise QuotaExceeded(t("u.quota_files", used=_count(count),
                              limit=_count(up.quota_files_per_cycle)))
    if used + size > up.quota_mb_per_cycle * MB:
        raise QuotaExceeded(t("u.quota_bytes", used=_mb(used), size=_mb(size),
                              limit=_count(up.quota_mb_per_cycle)))


async def check_versions(session: AsyncSession, cfg: Config, cycle_id: int) -> None:
    """Raise :class:`VersionLimitReached` when the cycle already holds
    ``[uploads] max_document_versions`` compiled or uploaded versions."""
    count = (await session.execute(
        select(func.count(Document.id)).where(Document.cycle_id == cycle_id,
                                              Document.source.in_(CAPPED_SOURCES)))).scalar_one()
    limit = cfg.uploads.max_document_versions
    if count >= limit:
        raise VersionLimitReached(t("u.document_versions", count=_count(count),
                                    limit=_count(limit)))
