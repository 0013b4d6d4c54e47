"""The services a workflow call needs, assembled once from the configuration."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from bot.core.clock import Clock, SystemClock
from bot.config import Config, office_config, office_hours
from bot.core.sop import SopDefinition, load_definition
from bot.core.storage import FileStore
from bot.core.workcal import DEFAULT_HOLIDAY_FILE, WorkCalendar

# when an office's settings were last said to have changed, process-wide (monotonic
# seconds; the key None: every office's): a view read before is compared again
_changed: dict[int | None, float] = {}


def office_settings_changed(office_id: int | None) -> None:
    """An office's settings changed (``None``: perhaps any office's): every view of it
    in this process is compared with the office's ``settings_version`` at its next use.
    Called at the commit of a change made in this process (:func:`_committed`), and on
    PostgreSQL for a change made in any process (its NOTIFY, ``bot.telegram.processes``)."""
    _changed[office_id] = time.monotonic()


def _changed_since(office_id: int, checked_at: float) -> bool:
    return max(_changed.get(office_id, float("-inf")),
               _changed.get(None, float("-inf"))) >= checked_at


@dataclass
class Services:
    config: Config
    sop: SopDefinition
    calendar: WorkCalendar
    clock: Clock
    store: FileStore
    extras: dict = field(default_factory=dict)
    signer: object | None = None  # bot.core.signing.Signer: the office's certificate, or None
    gateway: object | None = None  # bot.core.signing.GatewaySigner: the Pemda's TTE gateway
    bot_username: str = ""  # [telegram] bot_username, else getMe's answer at start-up
    # offices as data: the id of the office these services are for (None: the
    # regency-wide defaults of config.toml), and what all views share
    office_id: int | None = None
    views: dict = field(default_factory=dict, repr=False)

    # seconds a view read from an office's row is used before the office's
    # ``settings_version`` is compared again (one query of the office's key): the bound
    # on how long another process's change goes unseen where no NOTIFY comes (SQLite
    # with the CLI importing; a PostgreSQL process whose listening connection broke)
    VIEW_TTL = 10.0

    def for_office(self, office: Any, read_at: float | None = None) -> "Services":
        """The services of one office (``models.Office``): its settings
        (``office.settings``) over config.toml's, with its own SOP definition and
        calendar (time zone, office hours); clock, storage and signer are the process's.
        Offices with the same settings share the parsed configuration. ``read_at``: when
        the row was read (``time.monotonic()`` before the query): a change told after
        that is not hidden by this view."""
        settings = dict(office.settings or {})
        # as loaded (an expired version is not loaded here: None, read again next time)
        version = vars(office).get("settings_version")
        self.views[("office", office.id)] = (
            settings, version, time.monotonic() if read_at is None else read_at)
        return self._view(office.id, settings)

    def _view(self, office_id: int, settings: dict) -> "Services":
        base = self.views.get("base", self)
        if not settings:
            return replace(base, office_id=office_id, views=self.views)
        key = ("settings", json.dumps(settings, sort_keys=True, default=str))
        parsed = self.views.get(key)
        if parsed is None:
            config = office_config(base.config, settings)
            sop = _definition(config) if config.sop != base.config.sop else base.sop
            parsed = self.views[key] = (config, build_calendar(config), sop)
        config, calendar, sop = parsed
        return replace(base, config=config, calendar=calendar, sop=sop,
                       office_id=office_id, views=self.views)

    def cached_office(self, office_id: int) -> "Services | None":
        """The view of ``office_id`` when its settings were read or compared within
        ``VIEW_TTL`` and no change was told since, else None (compare the version,
        :meth:`known_version`, or read the office and call ``for_office``)."""
        hit = self.views.get(("office", office_id))
        if hit is None or time.monotonic() - hit[2] > self.VIEW_TTL \
                or _changed_since(office_id, hit[2]):
            return None
        return self._view(office_id, hit[0])

    def known_version(self, office_id: int) -> int | None:
        """The ``settings_version`` of the view kept for ``office_id`` (stale or not)."""
        hit = self.views.get(("office", office_id))
        return None if hit is None else hit[1]

    def confirm_office(self, office_id: int, checked_at: float) -> "Services":
        """The office's version is still the kept view's (compared at ``checked_at``,
        ``time.monotonic()`` before the query): the view is used again."""
        settings, version, _ = self.views[("office", office_id)]
        self.views[("office", office_id)] = (settings, version, checked_at)
        return self._view(office_id, settings)

    def forget_office(self, office_id: int) -> None:
        """The office's settings changed (a set-up import): read them again next time."""
        self.views.pop(("office", office_id), None)

    def verification_link(self, code: str) -> str | None:
        """What the QR on the final PDF holds: ``[verification] url`` with the code, else
        the deep link to the bot ``https://t.me/<bot>?start=cek_<KODE>``; None when the
        bot's username is not known yet."""
        url = self.config.verification.url.strip()
        if url:
            return url.replace("{kode}", code) if "{kode}" in url else f"{url.rstrip('/')}/{code}"
        name = (self.config.telegram.bot_username or self.bot_username).lstrip("@")
        return f"https://t.me/{name}?start=cek_{code}" if name else None

    @property
    def day_minutes(self) -> int:
        start, end = office_hours(self.config)
        return (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)

    def measurement_options(self) -> dict:
        from models.enums import LowerFormula
        from reports.measure import CapPolicy, RatingBand

        m = self.config.measurement
        bands = tuple(
            RatingBand(Decimal(str(th)), label)
            for th, label in zip([*m.band_thresholds, float("-inf")], m.band_labels)
        )
        cap = CapPolicy(Decimal(str(m.cap_above)), Decimal(str(m.cap_score))) if m.cap_enabled else None
        return {"bands": bands, "cap": cap, "lower_formula": LowerFormula(m.lower_formula),
                "text_scale": tuple(m.text_scale)}


def build_calendar(config: Config) -> WorkCalendar:
    start, end = office_hours(config)
    cal = config.calendar
    return WorkCalendar(
        tz=cal.timezone,
        office_start=start,
        office_end=end,
        extra_holidays={date.fromisoformat(d): "Libur kantor" for d in cal.extra_holidays},
        extra_workdays=[date.fromisoformat(d) for d in cal.extra_workdays],
        holiday_file=config.resolve(cal.holiday_file) if cal.holiday_file else DEFAULT_HOLIDAY_FILE,
    )


def _definition(config: Config) -> SopDefinition:
    return load_definition(config.resolve(config.sop.definition) if config.sop.definition
                           else None)


def build_services(config: Config, clock: Clock | None = None) -> Services:
    sop = _definition(config)
    from bot.core.signing import gateway_from_config, signer_from_config
    from bot.core.workcal import set_office_zone

    calendar = build_calendar(config)
    set_office_zone(calendar.tz)  # every time shown: the office's zone and label
    services = Services(
        config=config,
        sop=sop,
        calendar=calendar,
        clock=clock or SystemClock(),
        store=FileStore(config.storage_dir, config.storage.max_evidence_mb * 1024 * 1024),
        signer=signer_from_config(config),
        gateway=gateway_from_config(config),
        bot_username=config.telegram.bot_username.lstrip("@"),
    )
    services.views["base"] = services
    return services


# ------------------------------------------------------------------ a change in this process
def _flushed(session, _context, _instances=None) -> None:
    """Offices whose settings this flush changed (``settings_version`` counted up by
    ``models.organisation``), told at the commit."""
    from sqlalchemy import inspect as sa_inspect

    from models import Office

    for obj in session.dirty:
        if isinstance(obj, Office) and sa_inspect(obj).attrs.settings.history.has_changes():
            session.info.setdefault("offices_changed", set()).add(obj.id)


def _committed(session) -> None:
    for office_id in session.info.pop("offices_changed", ()):
        office_settings_changed(office_id)


def _rolled_back(session) -> None:
    session.info.pop("offices_changed", None)


def _listen_for_changes() -> None:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    if not event.contains(Session, "before_flush", _flushed):
        event.listen(Session, "before_flush", _flushed)
        event.listen(Session, "after_commit", _committed)
        event.listen(Session, "after_rollback", _rolled_back)


_listen_for_changes()
