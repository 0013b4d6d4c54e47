"""The services a workflow call needs, assembled once from the configuration."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from bot.core.clock import Clock, SystemClock
from bot.config import Config, office_hours
from bot.core.sop import SopDefinition, load_definition
from bot.core.storage import FileStore
from bot.core.workcal import DEFAULT_HOLIDAY_FILE, WorkCalendar


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


def build_services(config: Config, clock: Clock | None = None) -> Services:
    sop = load_definition(config.resolve(config.sop.definition) if config.sop.definition else None)
    from bot.core.signing import gateway_from_config, signer_from_config
    from bot.core.workcal import set_office_zone

    calendar = build_calendar(config)
    set_office_zone(calendar.tz)  # every time shown: the office's zone and label
    return Services(
        config=config,
        sop=sop,
        calendar=calendar,
        clock=clock or SystemClock(),
        store=FileStore(config.storage_dir, config.storage.max_evidence_mb * 1024 * 1024),
        signer=signer_from_config(config),
        gateway=gateway_from_config(config),
        bot_username=config.telegram.bot_username.lstrip("@"),
    )
