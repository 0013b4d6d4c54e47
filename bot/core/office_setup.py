"""``sopbot setup import``: the set-up workbook read off the event loop within the upload
limits, applied in bulk in the caller's transaction and recorded in the audit trail.

reports/setup_workbook.py reads and checks the workbook (no database); this module
writes. One audit row per import, action ``setup.import``, lists every created or
changed unit, person, indicator (with its targets) and the office itself, with the old
and new value of each changed field, so a person can see what an import changed.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import audit
from bot.config import Config, ConfigError, DocumentNumbering, office_config
from bot.core.office_data import apply_office
from bot.core.uploads import xlsx_limits
from models import Office
from reports.setup_workbook import SetupError, SetupResult, read_setup

AUDIT_ACTION = "setup.import"


class DefinitionRefused(ValueError):
    """The SOP definition a workbook names cannot be used (Indonesian message)."""


def definition_setting(name: str, cfg: Config) -> str:
    """The ``[sop] definition`` value for the SOP definition file a workbook names.

    Safety: a workbook must not make the bot read any file it likes. The name is a
    relative path looked up in the folder of config.toml (subfolders allowed), then
    among the definitions bundled with the bot (``bot/data``); an absolute path, a path
    leaving those folders (``..``, a symbolic link pointing elsewhere) and a file not
    ending in ``.toml`` are refused, as is a file that does not exist or is not a valid
    SOP definition. Returns the path relative to the config folder, or the bundled
    file's absolute path (both as ``Config.resolve`` reads them)."""
    from bot.core.sop import PACKAGED_DEFINITION, SopDefinitionError, load_definition

    text = name.strip()
    written = Path(text.replace("\\", "/"))
    if written.is_absolute() or text.startswith(("~", "/", "\\")) or ":" in text:
        raise DefinitionRefused(f"\"{text}\": tulis nama berkas saja (relatif terhadap folder "
                                "config.toml), bukan jalur mutlak.")
    if written.suffix.casefold() != ".toml":
        raise DefinitionRefused(f"\"{text}\": berkas definisi SOP harus berakhiran .toml.")
    config_dir = cfg.base_dir.resolve()
    bundled_dir = PACKAGED_DEFINITION.parent.resolve()
    for root in (config_dir, bundled_dir):
        candidate = (root / written).resolve()
        if not candidate.is_relative_to(root):
            raise DefinitionRefused(f"\"{text}\" berada di luar folder config.toml dan folder "
                                    "definisi bawaan bot; hanya berkas di folder itu yang "
                                    "boleh dipakai.")
        if not candidate.is_file():
            continue
        try:
            load_definition(candidate)
        except SopDefinitionError as exc:
            detail = str(exc).replace(str(candidate), text)
            raise DefinitionRefused(f"\"{text}\" bukan definisi SOP yang sah: {detail}") \
                from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DefinitionRefused(f"\"{text}\" tidak dapat dibaca ({type(exc).__name__}).") \
                from None
        if root == config_dir:
            return candidate.relative_to(config_dir).as_posix()
        return str(candidate)
    raise DefinitionRefused(f"Berkas definisi SOP \"{text}\" tidak ditemukan di folder "
                            "config.toml maupun di definisi bawaan bot.")


def finish_settings(result: SetupResult, cfg: Config, current: dict[str, Any] | None
                    ) -> tuple[dict[str, Any], list[SetupError]]:
    """The office's settings as they are stored (``Office.settings``) from the
    workbook's: the SOP definition resolved (:func:`definition_setting`), the document
    types and the escalation chain completed with the regency's entries the workbook
    does not name (``office_config`` replaces such a table whole), the office's time
    zone kept when the workbook leaves it empty (``current``: its settings now), then
    checked against config.toml's rules. Errors name the sheet, row and column."""
    settings = {section: dict(values) for section, values in
                ((result.spec.settings or {}) if result.spec else {}).items()}
    errors: list[SetupError] = []
    sop = settings.get("sop")
    if sop and sop.get("definition"):
        try:
            sop["definition"] = definition_setting(sop["definition"], cfg)
        except DefinitionRefused as exc:
            errors.append(SetupError(*result.places.get(
                "sop.definition", result.place("sop.definition")), str(exc)))
    numbering = settings.get("numbering")
    if numbering and "types" in numbering:
        types = {key: dataclasses.asdict(kind) for key, kind in cfg.numbering.types.items()}
        for key, given in numbering["types"].items():
            types[key] = {**types.get(key, dataclasses.asdict(DocumentNumbering())), **given}
        numbering["types"] = types
    reminders = settings.get("reminders")
    if reminders and "escalation" in reminders:
        chain = {**cfg.reminders.escalation, **reminders["escalation"]}
        reminders["escalation"] = {k: v for k, v in chain.items() if v is not None}
    zone = ((current or {}).get("calendar") or {}).get("timezone")
    if zone and "timezone" not in (settings.get("calendar") or {}):
        settings.setdefault("calendar", {})["timezone"] = zone
    calendar = settings.get("calendar") or {}
    if not errors and ("office_start" in calendar or "office_end" in calendar):
        start = calendar.get("office_start", cfg.calendar.office_start)
        end = calendar.get("office_end", cfg.calendar.office_end)
        if _minutes(start) is not None and _minutes(end) is not None \
                and _minutes(end) <= _minutes(start):  # named by the row written
            key = "calendar.office_end" if "office_end" in calendar else "calendar.office_start"
            errors.append(SetupError(*result.place(key), f"Jam Pulang ({end}) harus setelah "
                                                         f"Jam Masuk ({start})."))
    if not errors:
        try:  # the office's settings follow config.toml's rules
            office_config(cfg, settings)
        except ConfigError as exc:
            errors.append(SetupError(*result.place(str(exc)), str(exc)))
    return settings, errors


def _minutes(text: Any) -> int | None:
    try:
        hours, minutes = str(text).split(":")
        return int(hours) * 60 + int(minutes)
    except ValueError:
        return None


async def import_setup(session: AsyncSession, path: Path | str, *, at: datetime,
                       config: Config | None = None, actor_id: int | None = None,
                       services: Any = None) -> SetupResult:
    """Read the workbook (in a worker thread, after the size and cell checks) and, when
    it has no errors, apply it and append one audit row listing what changed.

    The workbook's settings replace the office's (see :func:`finish_settings`); with
    ``services`` (``bot.core.services.Services``) the office's cached view is forgotten,
    so the new settings are used from the next update on.

    With errors nothing is written. Raises ``SetupWorkbookError`` (``SetupTooManyRows``
    included) and ``XlsxTooLarge`` like :func:`reports.setup_workbook.read_setup`.
    """
    cfg = config or Config()
    path = Path(path)
    result = await asyncio.to_thread(read_setup, path, limits=xlsx_limits(cfg),
                                     max_rows=cfg.uploads.max_setup_rows)
    if result.spec is None or result.errors:
        return result
    current = (await session.execute(select(Office).where(
        Office.unit_code == result.spec.unit_code).order_by(Office.id))).scalars().first()
    settings, errors = await asyncio.to_thread(
        finish_settings, result, cfg, current.settings if current is not None else None)
    if errors:
        return SetupResult(None, errors, result.places)
    result.spec = dataclasses.replace(result.spec, settings=settings)
    changes: list[dict[str, Any]] = []
    office = await apply_office(session, result.spec, changes=changes)
    digest = await asyncio.to_thread(lambda: hashlib.sha256(path.read_bytes()).hexdigest())
    counts: dict[str, int] = {}
    for change in changes:
        key = f"{change['jenis']} {change['aksi']}"
        counts[key] = counts.get(key, 0) + 1
    await audit.record(session, AUDIT_ACTION, actor_id=actor_id, cycle_id=None, at=at,
                       file=path.name, sha256=digest, counts=counts, changes=changes)
    if services is not None:
        services.forget_office(office.id)
    return result
