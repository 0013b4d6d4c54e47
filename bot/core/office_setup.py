"""``sopbot setup import``: the set-up workbook read off the event loop within the upload
limits, applied in bulk in the caller's transaction and recorded in the audit trail.

reports/setup_workbook.py reads and checks the workbook (no database); this module
writes. One audit row per import, action ``setup.import``, lists every created or
changed unit, person, indicator (with its targets) and the office itself, with the old
and new value of each changed field, so a person can see what an import changed.
"""
from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import audit
from bot.config import Config, ConfigError, office_config
from bot.core.office_data import apply_office
from bot.core.uploads import xlsx_limits
from reports.setup_workbook import SetupResult, read_setup

AUDIT_ACTION = "setup.import"


async def import_setup(session: AsyncSession, path: Path | str, *, at: datetime,
                       config: Config | None = None, actor_id: int | None = None
                       ) -> SetupResult:
    """Read the workbook (in a worker thread, after the size and cell checks) and, when
    it has no errors, apply it and append one audit row listing what changed.

    With errors nothing is written. Raises ``SetupWorkbookError`` (``SetupTooManyRows``
    included) and ``XlsxTooLarge`` like :func:`reports.setup_workbook.read_setup`.
    """
    cfg = config or Config()
    path = Path(path)
    result = await asyncio.to_thread(read_setup, path, limits=xlsx_limits(cfg),
                                     max_rows=cfg.uploads.max_setup_rows)
    if result.spec is None or result.errors:
        return result
    try:  # the office's settings follow config.toml's rules
        office_config(cfg, result.spec.settings or {})
    except ConfigError as exc:
        from reports.setup_workbook import SHEET_OFFICE, SetupError

        return SetupResult(None, [SetupError(SHEET_OFFICE, None, "Nilai", str(exc))])
    changes: list[dict[str, Any]] = []
    await apply_office(session, result.spec, changes=changes)
    digest = await asyncio.to_thread(lambda: hashlib.sha256(path.read_bytes()).hexdigest())
    counts: dict[str, int] = {}
    for change in changes:
        key = f"{change['jenis']} {change['aksi']}"
        counts[key] = counts.get(key, 0) + 1
    await audit.record(session, AUDIT_ACTION, actor_id=actor_id, cycle_id=None, at=at,
                       file=path.name, sha256=digest, counts=counts, changes=changes)
    return result
