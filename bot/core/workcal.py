"""Working-time calendar for Indonesian government offices.

Every time standard of the SOP ("5 menit", "1-5 hari") is measured in office working
time (DESIGN.md, principle 5): Monday to Friday, office hours in Asia/Jakarta (WIB),
minus Indonesian public holidays and collective leave (cuti bersama).

Non-working days are, in this order of precedence:

1. ``extra_workdays`` from the configuration are always working days (an office may be
   ordered to work on a Saturday or a holiday);
2. ``extra_holidays`` from the configuration (e.g. a regional holiday);
3. ``[[libur]]`` entries of the holiday file (``bot/data/hari_libur.toml`` by default):
   only the corrections the SKB 3 Menteri makes to the ``holidays`` package (a cuti
   bersama or national holiday the package lacks or dates differently);
4. the ``holidays`` package (>= 0.109), its categories ``public`` (libur nasional) and
   ``government`` (cuti bersama of the SKB 3 Menteri, which the package keeps for
   Indonesia), except the dates the holiday file lists under ``[[bukan_libur]]`` (the
   package's Islamic-calendar estimates lose to the decree);
5. days of the week not in ``workdays`` (Saturday and Sunday by default).

All datetimes given to :class:`WorkCalendar` must be timezone-aware (a naive datetime
raises :class:`ValueError`); results are aware datetimes in the calendar's time zone
(Asia/Jakarta by default). Office hours are the half-open interval
``[office_start, office_end)``: the office is open at 07:30:00 and closed at 16:00:00.
A computed deadline may nevertheless land exactly on ``office_end`` ("16.00 today" reads
better than "07.30 tomorrow", and both are the same instant of working time).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal, cast
from zoneinfo import ZoneInfo

import holidays
from babel.dates import format_date

__all__ = [
    "DEFAULT_HOLIDAY_FILE",
    "HOLIDAY_KINDS",
    "WIB",
    "HolidayEntry",
    "HolidayFile",
    "HolidayFileError",
    "WorkCalendar",
    "format_wib",
    "load_holiday_file",
    "office_zone",
    "set_office_zone",
    "use_office_zone",
    "package_holidays",
    "to_wib",
]

WIB: Final = ZoneInfo("Asia/Jakarta")
"""Western Indonesian Time, the zone of the office hours and of every displayed time."""

DEFAULT_HOLIDAY_FILE: Final = Path(__file__).resolve().parents[1] / "data" / "hari_libur.toml"
"""The holiday file shipped with the bot (the decree's corrections to the package)."""

HolidayKind = Literal["cuti_bersama", "libur_nasional"]
HOLIDAY_KINDS: Final[tuple[str, ...]] = ("cuti_bersama", "libur_nasional")

# A calendar with no working day in this many days is misconfigured (e.g. every day of
# the week excluded); searches stop there instead of looping forever.
_SEARCH_LIMIT_DAYS: Final = 3 * 366


# --------------------------------------------------------------------------------------
# Holiday file
# --------------------------------------------------------------------------------------


class HolidayFileError(ValueError):
    """The holiday file cannot be read or one of its entries is invalid.

    The message names the file and the offending entry (section, position and, where
    present, its ``nama``) so an administrator can fix it.
    """


@dataclass(frozen=True, slots=True)
class HolidayEntry:
    """One ``[[libur]]`` entry: a date that is not a working day."""

    tanggal: date
    nama: str
    jenis: HolidayKind
    keterangan: str | None = None


@dataclass(frozen=True, slots=True)
class HolidayFile:
    """The parsed content of a holiday file.

    ``libur`` maps dates to added non-working days; ``bukan_libur`` maps dates removed
    from the ``holidays`` package to the description of what was removed;
    ``tahun_lengkap`` lists the years whose decree (SKB 3 Menteri) has been entered.
    """

    libur: Mapping[date, HolidayEntry] = field(default_factory=dict)
    bukan_libur: Mapping[date, str] = field(default_factory=dict)
    tahun_lengkap: frozenset[int] = frozenset()


_LIBUR_KEYS: Final = frozenset({"tanggal", "nama", "jenis", "keterangan"})
_BUKAN_LIBUR_KEYS: Final = frozenset({"tanggal", "nama", "keterangan"})
_TOP_KEYS: Final = frozenset({"libur", "bukan_libur", "tahun_lengkap"})


def _entry_label(path: Path, section: str, index: int, raw: object) -> str:
    """``hari_libur.toml [[libur]] ke-3 ("Cuti Bersama ...")`` for error messages."""
    label = f"{path}: [[{section}]] ke-{index}"
    if isinstance(raw, Mapping):
        nama = raw.get("nama")
        if isinstance(nama, str) and nama.strip():
            label += f' ("{nama.strip()}")'
        tanggal = raw.get("tanggal")
        if isinstance(tanggal, date):
            label += f" tanggal={tanggal.isoformat()}"
        elif tanggal is not None:
            label += f" tanggal={tanggal!r}"
    return label


def _parse_common(
    path: Path, section: str, index: int, raw: object, allowed: frozenset[str]
) -> tuple[date, str, str | None]:
    """Validate the keys shared by both sections; return (tanggal, nama, keterangan)."""
    label = _entry_label(path, section, index, raw)
    if not isinstance(raw, Mapping):
        raise HolidayFileError(f"{label}: entri harus berupa tabel TOML")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise HolidayFileError(
            f"{label}: kunci tidak dikenal {', '.join(unknown)} "
            f"(yang boleh: {', '.join(sorted(allowed))})"
        )
    tanggal = raw.get("tanggal")
    # tomllib gives datetime.date for `2025-04-02`; a datetime (with a clock time) or a
    # quoted string is a mistake.
    if not isinstance(tanggal, date) or isinstance(tanggal, datetime):
        raise HolidayFileError(
            f"{label}: 'tanggal' harus berupa tanggal TOML tanpa tanda kutip, "
            f"mis. tanggal = 2025-04-02 (didapat {tanggal!r})"
        )
    nama = raw.get("nama")
    if not isinstance(nama, str) or not nama.strip():
        raise HolidayFileError(f"{label}: 'nama' wajib diisi dengan teks")
    keterangan = raw.get("keterangan")
    if keterangan is not None and not isinstance(keterangan, str):
        raise HolidayFileError(f"{label}: 'keterangan' harus berupa teks")
    return tanggal, nama.strip(), keterangan


def _section(path: Path, data: Mapping[str, object], key: str) -> list[object]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise HolidayFileError(
            f"{path}: '{key}' harus ditulis sebagai [[{key}]] (array of tables)"
        )
    return value


def load_holiday_file(path: Path | str) -> HolidayFile:
    """Read and validate a holiday file (format: see ``bot/data/hari_libur.toml``).

    Raises :class:`HolidayFileError` naming the file and the entry when the file is
    missing, is not valid TOML, has an unknown key, a bad ``tanggal``, an empty ``nama``,
    an unknown ``jenis``, the same date twice in a section, or the same date both added
    and removed.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise HolidayFileError(f"{path}: berkas hari libur tidak ditemukan") from None
    except tomllib.TOMLDecodeError as exc:
        raise HolidayFileError(f"{path}: bukan TOML yang sah: {exc}") from exc

    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise HolidayFileError(
            f"{path}: kunci tidak dikenal {', '.join(unknown)} "
            f"(yang boleh: {', '.join(sorted(_TOP_KEYS))})"
        )

    libur: dict[date, HolidayEntry] = {}
    for index, raw in enumerate(_section(path, data, "libur"), start=1):
        tanggal, nama, keterangan = _parse_common(path, "libur", index, raw, _LIBUR_KEYS)
        label = _entry_label(path, "libur", index, raw)
        jenis = cast(Mapping[str, object], raw).get("jenis")
        if not isinstance(jenis, str) or jenis not in HOLIDAY_KINDS:
            raise HolidayFileError(
                f"{label}: 'jenis' harus salah satu dari {', '.join(HOLIDAY_KINDS)} "
                f"(didapat {jenis!r})"
            )
        if tanggal in libur:
            raise HolidayFileError(
                f"{label}: tanggal {tanggal.isoformat()} sudah tercantum sebagai "
                f'"{libur[tanggal].nama}"'
            )
        libur[tanggal] = HolidayEntry(tanggal, nama, cast(HolidayKind, jenis), keterangan)

    bukan_libur: dict[date, str] = {}
    for index, raw in enumerate(_section(path, data, "bukan_libur"), start=1):
        tanggal, nama, _ = _parse_common(path, "bukan_libur", index, raw, _BUKAN_LIBUR_KEYS)
        label = _entry_label(path, "bukan_libur", index, raw)
        if tanggal in bukan_libur:
            raise HolidayFileError(
                f"{label}: tanggal {tanggal.isoformat()} sudah tercantum di [[bukan_libur]]"
            )
        if tanggal in libur:
            raise HolidayFileError(
                f"{label}: tanggal {tanggal.isoformat()} juga tercantum di [[libur]] "
                f'sebagai "{libur[tanggal].nama}"'
            )
        bukan_libur[tanggal] = nama

    years_raw = data.get("tahun_lengkap", [])
    if not isinstance(years_raw, list) or not all(
        isinstance(y, int) and not isinstance(y, bool) and 1900 <= y <= 2200
        for y in years_raw
    ):
        raise HolidayFileError(
            f"{path}: 'tahun_lengkap' harus berupa daftar tahun, mis. [2025, 2026] "
            f"(didapat {years_raw!r})"
        )

    return HolidayFile(
        libur=MappingProxyType(libur),
        bukan_libur=MappingProxyType(bukan_libur),
        tahun_lengkap=frozenset(years_raw),
    )


#: The ``holidays`` categories read for Indonesia: ``public`` is the libur nasional,
#: ``government`` the cuti bersama of the SKB 3 Menteri (civil servants' collective leave).
PACKAGE_CATEGORIES: Final[tuple[str, ...]] = (holidays.PUBLIC, holidays.GOVERNMENT)


@lru_cache(maxsize=64)
def _package_holidays(year: int) -> Mapping[date, str]:
    """Indonesian libur nasional and cuti bersama of one year from the ``holidays``
    package, with their Indonesian names (cached)."""
    found = holidays.country_holidays("ID", years=year, language="id",
                                      categories=PACKAGE_CATEGORIES)
    return MappingProxyType({d: name for d, name in found.items() if d.year == year})


def package_holidays(year: int) -> Mapping[date, str]:
    """What the ``holidays`` package alone says for the year (no holiday file, no
    config): the dates the holiday file must not repeat."""
    return _package_holidays(year)


# --------------------------------------------------------------------------------------
# Time zone helpers
# --------------------------------------------------------------------------------------


def _require_aware(dt: datetime, what: str = "dt") -> None:
    if not isinstance(dt, datetime):
        raise TypeError(f"{what} harus datetime, bukan {type(dt).__name__}")
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError(f"{what} harus datetime yang ber-zona waktu (aware): {dt!r}")


_office_zone: ZoneInfo = WIB  # the process's default: ``[calendar] timezone``
# the zone of the office being served, set by ``use_office_zone`` for one update, one
# office's part of a sweep (``bot.core.workflow.Workflow.bind``, ``bot.core.reminders``)
_current_zone: ContextVar[ZoneInfo | None] = ContextVar("office_zone", default=None)


def set_office_zone(tz: str | ZoneInfo) -> None:
    """The default zone (``[calendar] timezone`` of config.toml): every time shown to
    people is in their office's zone, with its own label (WIB, WITA or WIT); an office
    with a zone of its own (its settings, ``Office.settings``) sets it for the work done
    for it with ``use_office_zone``. Set when the services are built
    (``bot.core.services.build_services``)."""
    global _office_zone
    _office_zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    _current_zone.set(None)


def use_office_zone(tz: str | ZoneInfo | None) -> None:
    """The zone of the office the current task serves (None: the default again). A
    context variable: one update's task or one office's sweep does not change
    another's."""
    _current_zone.set(tz if tz is None or isinstance(tz, ZoneInfo) else ZoneInfo(tz))


def office_zone() -> ZoneInfo:
    return _current_zone.get() or _office_zone


def to_wib(dt: datetime) -> datetime:
    """Convert an aware datetime to the office's zone (WIB unless the office's
    ``calendar.timezone`` says otherwise; the name is historical). Naive input raises
    ValueError."""
    _require_aware(dt)
    return dt.astimezone(office_zone())


def format_wib(dt: datetime) -> str:
    """Format an aware datetime in Indonesian, in the office's zone with its label.

    >>> format_wib(datetime(2024, 2, 12, 7, 30, tzinfo=WIB))
    'Senin, 12 Februari 2024 pukul 07.30 WIB'
    """
    from reports.numbers import zone_label

    local = to_wib(dt)
    # CLDR "id": EEEE = Senin..Minggu, MMMM = Januari..Desember; Indonesian writes the
    # time with a dot (07.30).
    text = format_date(local.date(), "EEEE, d MMMM y", locale="id")
    return f"{text} pukul {local:%H.%M} {zone_label(local)}"


# --------------------------------------------------------------------------------------
# The calendar
# --------------------------------------------------------------------------------------


class WorkCalendar:
    """Office working time: working days, office hours, deadlines in working time.

    Args:
        tz: IANA zone of the office (``"Asia/Jakarta"``); a ``ZoneInfo`` is accepted.
        office_start: opening time on a working day (inclusive).
        office_end: closing time on a working day (exclusive; must be after opening).
        workdays: weekdays that are working days, Monday = 0 ... Sunday = 6.
        extra_holidays: additional non-working dates with their (Indonesian) names,
            usually from config (regional holidays, office decisions).
        extra_workdays: dates that are working days whatever else says (overrides
            weekends and holidays).
        holiday_file: TOML file with the decree's corrections to the package; the shipped
            ``bot/data/hari_libur.toml`` by default, ``None`` for none.

    Raises:
        ValueError: on an invalid argument; :class:`HolidayFileError` (a ValueError)
            when the holiday file is invalid.
    """

    def __init__(
        self,
        tz: str | ZoneInfo = "Asia/Jakarta",
        office_start: time = time(7, 30),
        office_end: time = time(16, 0),
        workdays: Iterable[int] = (0, 1, 2, 3, 4),
        extra_holidays: Mapping[date, str] | None = None,
        extra_workdays: Iterable[date] = (),
        holiday_file: Path | str | None = DEFAULT_HOLIDAY_FILE,
    ) -> None:
        self.tz: ZoneInfo = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        if office_start.tzinfo is not None or office_end.tzinfo is not None:
            raise ValueError("office_start/office_end harus jam lokal tanpa zona waktu")
        if office_end <= office_start:
            raise ValueError(
                f"office_end ({office_end:%H:%M}) harus setelah office_start "
                f"({office_start:%H:%M})"
            )
        self.office_start: time = office_start
        self.office_end: time = office_end

        days = frozenset(workdays)
        if not days or not all(isinstance(d, int) and 0 <= d <= 6 for d in days):
            raise ValueError(
                f"workdays harus berisi angka hari 0 (Senin) s.d. 6 (Minggu): {workdays!r}"
            )
        self.workdays: frozenset[int] = days

        extras: dict[date, str] = {}
        for d, name in (extra_holidays or {}).items():
            if not isinstance(d, date) or isinstance(d, datetime):
                raise ValueError(f"extra_holidays: kunci harus tanggal (date): {d!r}")
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"extra_holidays[{d.isoformat()}]: nama wajib diisi")
            extras[d] = name.strip()
        self.extra_holidays: Mapping[date, str] = MappingProxyType(extras)

        workdays_extra: set[date] = set()
        for d in extra_workdays:
            if not isinstance(d, date) or isinstance(d, datetime):
                raise ValueError(f"extra_workdays: harus tanggal (date): {d!r}")
            if d in extras:
                raise ValueError(
                    f"{d.isoformat()} tercantum di extra_holidays dan extra_workdays"
                )
            workdays_extra.add(d)
        self.extra_workdays: frozenset[date] = frozenset(workdays_extra)

        self.holiday_file: Path | None = None if holiday_file is None else Path(holiday_file)
        self._file: HolidayFile = (
            HolidayFile() if self.holiday_file is None else load_holiday_file(self.holiday_file)
        )

    def __repr__(self) -> str:
        return (
            f"WorkCalendar(tz={self.tz.key!r}, office_start={self.office_start!r}, "
            f"office_end={self.office_end!r}, workdays={tuple(sorted(self.workdays))!r}, "
            f"holiday_file={self.holiday_file!r})"
        )

    # ---- days ----------------------------------------------------------------------

    def _as_local_date(self, d: date) -> date:
        """A date as is; an aware datetime as its date in the calendar's zone."""
        if isinstance(d, datetime):
            _require_aware(d, "d")
            return d.astimezone(self.tz).date()
        return d

    def holiday_name(self, d: date) -> str | None:
        """Name (Indonesian) of the holiday or cuti bersama that closes the office on d.

        ``None`` when d is a working day (also when an ``extra_workdays`` entry overrides
        a holiday) or an ordinary weekend day.
        """
        d = self._as_local_date(d)
        if d in self.extra_workdays:
            return None
        if d in self.extra_holidays:
            return self.extra_holidays[d]
        entry = self._file.libur.get(d)
        if entry is not None:
            return entry.nama
        if d in self._file.bukan_libur:
            return None
        return _package_holidays(d.year).get(d)

    def is_working_day(self, d: date) -> bool:
        """True when the office works on d (its weekday, no holiday, no cuti bersama)."""
        d = self._as_local_date(d)
        if d in self.extra_workdays:
            return True
        return d.weekday() in self.workdays and self.holiday_name(d) is None

    def first_working_day_after(self, d: date) -> date:
        """The first working day strictly after d."""
        return self._step_working_day(self._as_local_date(d), +1)

    def _step_working_day(self, d: date, direction: int) -> date:
        for _ in range(_SEARCH_LIMIT_DAYS):
            d += timedelta(days=direction)
            if self.is_working_day(d):
                return d
        raise ValueError(f"tidak ada hari kerja dalam {_SEARCH_LIMIT_DAYS} hari dari {d}")

    def working_days_in(self, start: date, end: date) -> list[date]:
        """Working days from start to end, both inclusive ([] when end < start)."""
        start, end = self._as_local_date(start), self._as_local_date(end)
        days: list[date] = []
        d = start
        while d <= end:
            if self.is_working_day(d):
                days.append(d)
            d += timedelta(days=1)
        return days

    def holidays_in_year(self, year: int) -> dict[date, str]:
        """Every non-working holiday of the year (all sources), sorted by date.

        Holidays on weekends are included; ``extra_workdays`` are not.
        """
        candidates = (
            set(_package_holidays(year))
            | {d for d in self._file.libur if d.year == year}
            | {d for d in self.extra_holidays if d.year == year}
        )
        result: dict[date, str] = {}
        for d in sorted(candidates):
            name = self.holiday_name(d)
            if name is not None:
                result[d] = name
        return result

    def decree_covers(self, year: int) -> bool:
        """True when the holiday file declares the year's SKB 3 Menteri entered.

        For other years only the ``holidays`` package applies (its Islamic dates are
        estimates until the decree), and the bot should warn the administrator.
        """
        return year in self._file.tahun_lengkap

    # ---- office hours --------------------------------------------------------------

    def _opening(self, d: date) -> datetime:
        return datetime.combine(d, self.office_start, tzinfo=self.tz)

    def _closing(self, d: date) -> datetime:
        return datetime.combine(d, self.office_end, tzinfo=self.tz)

    def _local(self, dt: datetime) -> datetime:
        _require_aware(dt)
        return dt.astimezone(self.tz)

    def is_office_open(self, dt: datetime) -> bool:
        """True when dt is in office hours [office_start, office_end) of a working day."""
        local = self._local(dt)
        d = local.date()
        return self.is_working_day(d) and self._opening(d) <= local < self._closing(d)

    def next_opening(self, dt: datetime) -> datetime:
        """dt itself (in the calendar's zone) if the office is open, else the next opening."""
        local = self._local(dt)
        d = local.date()
        if self.is_working_day(d):
            if local < self._opening(d):
                return self._opening(d)
            if local < self._closing(d):
                return local
        return self._opening(self.first_working_day_after(d))

    def _windows(self, start: date) -> Iterator[tuple[datetime, datetime]]:
        """Office-hour windows of the working days from start on (endless)."""
        d = start if self.is_working_day(start) else self._step_working_day(start, +1)
        while True:
            yield self._opening(d), self._closing(d)
            d = self._step_working_day(d, +1)

    # ---- arithmetic ----------------------------------------------------------------

    def add_working_minutes(self, dt: datetime, minutes: int) -> datetime:
        """dt plus the given number of office minutes.

        A start outside office hours starts at the next opening. A result that falls
        exactly at closing time stays there (16.00 today, not 07.30 on the next working
        day). ``minutes=0`` returns :meth:`next_opening`.
        """
        if minutes < 0:
            raise ValueError(f"minutes tidak boleh negatif: {minutes}")
        current = self.next_opening(dt)
        remaining = timedelta(minutes=minutes)
        for opening, closing in self._windows(current.date()):
            start = max(current, opening)
            available = closing - start
            if remaining <= available:
                return start + remaining
            remaining -= available
        raise AssertionError("unreachable")  # pragma: no cover

    def add_working_days(self, dt: datetime, days: int) -> datetime:
        """The same clock time on the ``days``-th working day after dt's working day.

        If dt is outside office hours, counting starts at the next opening (Friday 18.00
        + 1 day = Tuesday 07.30 when Monday and Tuesday are working days). Exactly at
        closing time on a working day counts as that day (Friday 16.00 + 1 = Monday
        16.00). ``days=0`` returns the (possibly moved) start.
        """
        if days < 0:
            raise ValueError(f"days tidak boleh negatif: {days}")
        local = self._local(dt)
        d = local.date()
        if not (self.is_working_day(d) and local == self._closing(d)):
            local = self.next_opening(local)
            d = local.date()
        for _ in range(days):
            d = self._step_working_day(d, +1)
        # The clock time is already within [office_start, office_end]: clamp anyway, so
        # a future change of the rules above cannot produce a time outside office hours.
        clock = min(max(local.timetz().replace(tzinfo=None), self.office_start), self.office_end)
        return datetime.combine(d, clock, tzinfo=self.tz)

    def working_minutes_between(self, a: datetime, b: datetime) -> int:
        """Whole office minutes in [a, b); 0 when b <= a."""
        a_local, b_local = self._local(a), self._local(b)
        if b_local <= a_local:
            return 0
        total = timedelta()
        d = a_local.date()
        end = b_local.date()
        while d <= end:
            if self.is_working_day(d):
                lo = max(a_local, self._opening(d))
                hi = min(b_local, self._closing(d))
                if hi > lo:
                    total += hi - lo
            d += timedelta(days=1)
        return int(total.total_seconds() // 60)

    def last_working_day_morning(self, deadline: datetime) -> datetime:
        """Opening time of the last working day on which work can still meet deadline.

        That is the opening of the deadline's own day when it is a working day and the
        deadline is after its opening; otherwise (deadline at or before the opening, or
        on a non-working day) the opening of the last working day before it. Used for
        "today is the last day" reminders.
        """
        local = self._local(deadline)
        d = local.date()
        if self.is_working_day(d) and local > self._opening(d):
            return self._opening(d)
        return self._opening(self._step_working_day(d, -1))
