"""Configuration: ``config.toml`` (path by ``--config``), built-in defaults, env overrides.

Every key is documented in ``config.example.toml``. A bad file stops start-up with a
``ConfigError`` that names the key (``[reminders] share_of_time: ...``).
"""
from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

ENV_TOKEN = "SOPBOT_TELEGRAM_TOKEN"
ENV_DATABASE_URL = "SOPBOT_DATABASE_URL"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong kind."""


@dataclass
class OfficeConfig:
    name: str = "Dinas Tenaga Kerja dan Perindustrian"
    regency: str = "Kabupaten Lampung Barat"
    place: str = "Liwa"
    unit_code: str = "II.08"
    address: str = ""  # the kop of the PDF: street, telephone, e-mail, post code
    logo: str = ""  # the kop's logo image (PNG/JPEG), relative to the config file


@dataclass
class TelegramConfig:
    token: str = ""
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    mode: str = "polling"
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: str = ""
    bot_username: str = ""


@dataclass
class DatabaseConfig:
    url: str = "sqlite:///data/sopbot.db"
    echo: bool = False


@dataclass
class StorageConfig:
    path: str = "data/files"
    max_evidence_mb: int = 10


@dataclass
class UploadsConfig:
    max_xlsx_uncompressed_mb: int = 50
    max_xlsx_cells: int = 200_000
    max_setup_rows: int = 10_000
    quota_mb_per_cycle: int = 200
    quota_files_per_cycle: int = 500
    max_document_versions: int = 30


@dataclass
class SopConfig:
    definition: str = ""  # empty: the packaged definition of this SOP
    invitation_valid_days: int = 14


@dataclass
class CalendarConfig:
    timezone: str = "Asia/Jakarta"
    office_start: str = "07:30"
    office_end: str = "16:00"
    extra_holidays: list[str] = field(default_factory=list)
    extra_workdays: list[str] = field(default_factory=list)
    holiday_file: str = ""


@dataclass
class MeasurementConfig:
    lower_formula: str = "mirror"
    cap_enabled: bool = False
    cap_above: float = 110.0
    cap_score: float = 120.0
    band_thresholds: list[float] = field(default_factory=lambda: [100.0, 75.0, 55.0])
    band_labels: list[str] = field(
        default_factory=lambda: ["Sangat Berhasil", "Berhasil", "Cukup", "Kurang"]
    )
    # grades of text indicators, worst to best (SAKIP: D < C < CC < B < BB < A < AA)
    text_scale: list[str] = field(
        default_factory=lambda: ["D", "C", "CC", "B", "BB", "A", "AA"]
    )
    # analysis with the numbers (issue 13): under this capaian (percent) the bot asks the
    # hindering factor and the follow-up plan; above 100 % an optional supporting factor
    analysis_threshold: float = 100.0
    # true: the hindering factor and the follow-up plan cannot be skipped
    analysis_mandatory: bool = False


#: the document type of the measurement report the bot numbers (key of [numbering] types)
MEASUREMENT_REPORT = "pengukuran_kinerja"
ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")


@dataclass
class DocumentNumbering:
    """The number of one document type: its archive classification code and the code
    of the kind of official document (``KPTS`` only for a keputusan; "" for none)."""

    nama: str = ""  # what the type is called in help texts
    kode: str = ""  # kode klasifikasi arsip; "" = [numbering] kode
    jenis: str = ""  # kode jenis naskah; "" = none (its segment is left out)
    format: str = ""  # "" = [numbering] format


@dataclass
class NumberingConfig:
    format: str = "{kode}/{urut}/{jenis}/{unit}/{tahun}"
    kode: str = "050"  # for a document type without its own code
    jenis: str = ""
    types: dict[str, DocumentNumbering] = field(default_factory=lambda: {
        MEASUREMENT_REPORT: DocumentNumbering(nama="Laporan Pengukuran Kinerja", kode="050",
                                              jenis="")})

    def number(self, doc_type: str, *, sequence: int, on, unit: str) -> str:
        """The letter number of ``doc_type``; a segment left empty (no ``jenis``) is
        dropped with its separator: "050/12/II.08/2024", not "050/12//II.08/2024"."""
        kind = self.types.get(doc_type) or DocumentNumbering()
        text = (kind.format or self.format).format(
            kode=kind.kode or self.kode, urut=sequence, jenis=kind.jenis if doc_type in
            self.types else self.jenis, unit=unit, tahun=on.year, bulan=on.month,
            bulan_romawi=ROMAN[on.month - 1])
        return re.sub(r"/{2,}", "/", text).strip("/")

    def example(self, doc_type: str, unit: str, year: int) -> str:
        """"Laporan Pengukuran Kinerja: 050/123/II.08/2024" for the help texts."""
        from datetime import date

        kind = self.types.get(doc_type)
        name = kind.nama if kind is not None and kind.nama else doc_type
        return f"{name}: {self.number(doc_type, sequence=123, on=date(year, 10, 14), unit=unit)}"


@dataclass
class RemindersConfig:
    sweep_interval_seconds: int = 60
    share_of_time: float = 0.5
    last_day_morning: bool = True
    escalation_interval_working_days: int = 1
    office_hours_only: bool = True
    escalation: dict[str, str] = field(
        default_factory=lambda: {
            "staf": "kasubag",
            "kabid": "kasubag",
            "kasubag": "sekretaris",
            "sekretaris": "kadis",
        }
    )
    digest_enabled: bool = True
    quarterly_prompt: bool = True


@dataclass
class Agency:
    key: str = ""
    name: str = ""


@dataclass
class DeliveryConfig:
    agencies: list[Agency] = field(
        default_factory=lambda: [
            Agency("bappeda", "Bappeda Kabupaten Lampung Barat"),
            Agency("inspektorat", "Inspektorat Kabupaten Lampung Barat"),
            Agency("organisasi", "Bagian Organisasi Setdakab Lampung Barat"),
        ]
    )
    # the receipt an agency returns is its own time, not the office's: its contact is
    # reminded this many working days after the sending, then as often again, at most
    # receipt_reminder_max times; nobody inside the office is escalated to
    receipt_reminder_days: int = 1
    receipt_reminder_max: int = 3


@dataclass
class OutboxConfig:
    interval_seconds: float = 0.5
    max_attempts: int = 8
    rate_per_second: float = 29.0
    per_chat_interval_seconds: float = 1.0


@dataclass
class SigningConfig:
    pkcs12_path: str = ""  # empty: no electronic signature (SOPBOT_SIGNING_PKCS12)
    passphrase: str = ""  # better: SOPBOT_SIGNING_PASSPHRASE
    timestamp_url: str = ""  # RFC 3161 time-stamp authority: PAdES B-T instead of B-B
    trust_roots: list[str] = field(default_factory=list)  # PEM/DER CA certificates
    # a BSrE-style TTE gateway of the Pemda instead of the office's certificate: the
    # signer's own key, unlocked by the passphrase they send in the chat
    gateway_url: str = ""
    gateway_username: str = ""  # the office's client credentials (HTTP Basic)
    gateway_password: str = ""  # better: SOPBOT_TTE_GATEWAY_PASSWORD
    gateway_nik: dict[str, str] = field(default_factory=dict)  # NIP -> NIK at the gateway


@dataclass
class VerificationConfig:
    url: str = ""  # a web page that checks a code: "https://.../cek/{kode}"


@dataclass
class MonitoringConfig:
    listen: str = "127.0.0.1"
    port: int = 0  # 0: no /healthz and /metrics
    max_lag_seconds: int = 300  # /healthz answers 503 when the inbox or outbox lags more


@dataclass
class LoggingConfig:
    format: str = "text"  # "text" or "json" (one JSON object per line)
    level: str = "INFO"


@dataclass
class RegencyConfig:
    # Telegram user ids of the regency admins: they add offices and list them (/kantor);
    # see bot.core.regency
    admins: list[int] = field(default_factory=list)


@dataclass
class Config:
    office: OfficeConfig = field(default_factory=OfficeConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    uploads: UploadsConfig = field(default_factory=UploadsConfig)
    sop: SopConfig = field(default_factory=SopConfig)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    measurement: MeasurementConfig = field(default_factory=MeasurementConfig)
    numbering: NumberingConfig = field(default_factory=NumberingConfig)
    reminders: RemindersConfig = field(default_factory=RemindersConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    signing: SigningConfig = field(default_factory=SigningConfig)
    verification: VerificationConfig = field(default_factory=VerificationConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    regency: RegencyConfig = field(default_factory=RegencyConfig)
    base_dir: Path = field(default_factory=Path.cwd)

    def resolve(self, relative: str) -> Path:
        """A path from the config, relative to the folder of the config file."""
        p = Path(relative)
        return p if p.is_absolute() else self.base_dir / p

    @property
    def storage_dir(self) -> Path:
        return self.resolve(self.storage.path)

    @property
    def database_url(self) -> str:
        url = self.database.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rel = url.removeprefix("sqlite:///")
            if rel and rel != ":memory:":
                return "sqlite:///" + str(self.resolve(rel))
        return url


def _parse_time(text: str, key: str) -> time:
    try:
        hh, mm = text.split(":")
        return time(int(hh), int(mm))
    except ValueError:
        raise ConfigError(f"{key}: '{text}' bukan jam yang sah (contoh 07:30)") from None


def _convert(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: harus berupa tabel")
        return _build(hint, value, key)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: harus berupa daftar (list)")
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, vt = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: harus berupa tabel")
        return {k: _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: harus true atau false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: harus bilangan bulat")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: harus angka")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: harus teks")
        return value
    raise ConfigError(f"{key}: jenis nilai tidak dikenal")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "base_dir"}
    for key in data:
        if key not in names:
            where = f"[{prefix}] {key}" if prefix else f"[{key}]"
            raise ConfigError(f"{where}: kunci tidak dikenal")
    kwargs = {}
    for name in names:
        if name in data:
            full = f"{prefix}.{name}" if prefix else name
            kwargs[name] = _convert(data[name], hints[name], full)
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    start = _parse_time(cfg.calendar.office_start, "calendar.office_start")
    end = _parse_time(cfg.calendar.office_end, "calendar.office_end")
    if end <= start:
        raise ConfigError("calendar.office_end: harus setelah office_start")
    if cfg.telegram.mode not in ("polling", "webhook"):
        raise ConfigError("telegram.mode: harus 'polling' atau 'webhook'")
    if cfg.telegram.mode == "webhook" and not cfg.telegram.webhook_url:
        raise ConfigError("telegram.webhook_url: wajib diisi bila mode = 'webhook'")
    if cfg.telegram.mode == "webhook" and not cfg.telegram.webhook_secret.strip():
        raise ConfigError("telegram.webhook_secret: wajib diisi bila mode = 'webhook' "
                          "(token rahasia yang dikirim Telegram di setiap update)")
    if cfg.telegram.webhook_secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}",
                                                        cfg.telegram.webhook_secret):
        raise ConfigError("telegram.webhook_secret: 1-256 karakter A-Z, a-z, 0-9, _ atau -")
    if cfg.measurement.lower_formula not in ("mirror", "ratio"):
        raise ConfigError("measurement.lower_formula: harus 'mirror' atau 'ratio'")
    m = cfg.measurement
    if len(m.band_labels) != len(m.band_thresholds) + 1:
        raise ConfigError("measurement.band_labels: harus satu lebih banyak dari band_thresholds")
    if sorted(m.band_thresholds, reverse=True) != m.band_thresholds:
        raise ConfigError("measurement.band_thresholds: harus urut dari besar ke kecil")
    if len({" ".join(g.casefold().split()) for g in m.text_scale}) != len(m.text_scale) or any(
            not g.strip() for g in m.text_scale):
        raise ConfigError("measurement.text_scale: tiap nilai harus diisi dan berbeda")
    if not 0 < m.analysis_threshold <= 1000:
        raise ConfigError("measurement.analysis_threshold: harus di atas 0 dan paling banyak 1000")
    if not 0 < cfg.reminders.share_of_time < 1:
        raise ConfigError("reminders.share_of_time: harus antara 0 dan 1")
    if cfg.reminders.escalation_interval_working_days < 1:
        raise ConfigError("reminders.escalation_interval_working_days: minimal 1")
    if cfg.reminders.sweep_interval_seconds < 1:
        raise ConfigError("reminders.sweep_interval_seconds: minimal 1")
    roles = {"kadis", "sekretaris", "kasubag", "kabid", "staf"}
    for k, v in cfg.reminders.escalation.items():
        if k not in roles or v not in roles:
            raise ConfigError(f"reminders.escalation.{k}: peran tidak dikenal")
    for i, day in enumerate(cfg.calendar.extra_holidays):
        _parse_date(day, f"calendar.extra_holidays[{i}]")
    for i, day in enumerate(cfg.calendar.extra_workdays):
        _parse_date(day, f"calendar.extra_workdays[{i}]")
    for key in ("{urut}",):
        if key not in cfg.numbering.format:
            raise ConfigError("numbering.format: harus memuat {urut}")
    try:
        cfg.numbering.format.format(
            kode="1", urut=1, jenis="X", unit="U", tahun=2024, bulan=1, bulan_romawi="I"
        )
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"numbering.format: tidak sah ({exc})") from None
    if cfg.delivery.receipt_reminder_days < 1:
        raise ConfigError("delivery.receipt_reminder_days: minimal 1")
    if cfg.delivery.receipt_reminder_max < 0:
        raise ConfigError("delivery.receipt_reminder_max: tidak boleh negatif")
    for i, agency in enumerate(cfg.delivery.agencies):
        if not agency.key or not agency.name:
            raise ConfigError(f"delivery.agencies[{i}]: key dan name wajib diisi")
    if not 0 < cfg.outbox.rate_per_second <= 30:
        raise ConfigError("outbox.rate_per_second: harus di atas 0 dan paling banyak 30")
    if not 0 <= cfg.outbox.per_chat_interval_seconds <= 60:
        raise ConfigError("outbox.per_chat_interval_seconds: 0 (tanpa jeda) sampai 60")
    if cfg.storage.max_evidence_mb < 1:
        raise ConfigError("storage.max_evidence_mb: minimal 1")
    if not 0 <= cfg.monitoring.port <= 65535:
        raise ConfigError("monitoring.port: 0 (mati) atau 1-65535")
    if cfg.monitoring.max_lag_seconds < 1:
        raise ConfigError("monitoring.max_lag_seconds: minimal 1")
    if cfg.logging.format not in ("text", "json"):
        raise ConfigError("logging.format: harus 'text' atau 'json'")
    if cfg.logging.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("logging.level: DEBUG, INFO, WARNING atau ERROR")
    for f in dataclasses.fields(UploadsConfig):
        if getattr(cfg.uploads, f.name) < 1:
            raise ConfigError(f"uploads.{f.name}: minimal 1")


def _parse_date(text: str, key: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: '{text}' bukan tanggal (format YYYY-MM-DD)") from None


def load_config(path: str | Path | None = None, *, env: typing.Mapping[str, str] | None = None,
                required: bool = False) -> Config:
    """Load and validate the configuration.

    ``path`` None means ``config.toml`` in the working folder, used when present.
    Environment overrides: ``SOPBOT_TELEGRAM_TOKEN``, ``SOPBOT_DATABASE_URL``.
    """
    env = os.environ if env is None else env
    explicit = path is not None
    p = Path(path) if path is not None else Path("config.toml")
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    if p.exists():
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: TOML tidak sah: {exc}") from None
        base_dir = p.resolve().parent
    elif explicit or required:
        raise ConfigError(f"{p}: berkas konfigurasi tidak ditemukan")
    cfg = _build(Config, data, "")
    cfg.base_dir = base_dir
    if env.get(ENV_TOKEN):
        cfg.telegram.token = env[ENV_TOKEN]
    if env.get(ENV_DATABASE_URL):
        cfg.database.url = env[ENV_DATABASE_URL]
    _validate(cfg)
    return cfg


#: the sections of config.toml an office may set for itself (``Office.settings``, from its
#: set-up workbook); config.toml's values are the regency-wide defaults of the rest
OFFICE_SECTIONS = ("office", "sop", "calendar", "numbering", "reminders", "delivery",
                   "measurement")
#: keys of those sections that belong to the process, never to an office
PROCESS_KEYS = {"reminders": ("sweep_interval_seconds",)}


def office_config(base: Config, settings: typing.Mapping[str, Any] | None) -> Config:
    """The configuration one office works with: ``base`` (config.toml: process settings
    and regency-wide defaults) with the office's own ``settings`` laid over it, section
    by section and key by key (a key left out keeps the default). A bad value raises a
    ``ConfigError`` that names it, like a bad config.toml."""
    if not settings:
        return base
    sections: dict[str, Any] = {}
    for name, values in settings.items():
        if name not in OFFICE_SECTIONS:
            raise ConfigError(f"[{name}]: bukan pengaturan kantor")
        if not isinstance(values, dict):
            raise ConfigError(f"[{name}]: harus berupa tabel")
        for key in PROCESS_KEYS.get(name, ()):
            if key in values:
                raise ConfigError(f"[{name}] {key}: pengaturan proses, hanya di config.toml")
        merged = {**dataclasses.asdict(getattr(base, name)), **values}
        sections[name] = _build(type(getattr(base, name)), merged, name)
    cfg = dataclasses.replace(base, **sections)
    _validate(cfg)
    return cfg


def office_settings(cfg: Config) -> dict[str, Any]:
    """The office sections of ``cfg`` as plain data (JSON), e.g. to give an office of an
    existing installation the values its config.toml had."""
    out = {name: dataclasses.asdict(getattr(cfg, name)) for name in OFFICE_SECTIONS}
    for name, keys in PROCESS_KEYS.items():
        for key in keys:
            out[name].pop(key, None)
    return out


def office_hours(cfg: Config) -> tuple[time, time]:
    return (
        _parse_time(cfg.calendar.office_start, "calendar.office_start"),
        _parse_time(cfg.calendar.office_end, "calendar.office_end"),
    )


__all__ = ["Config", "ConfigError", "OFFICE_SECTIONS", "load_config", "office_config",
           "office_hours", "office_settings", "Agency"]
