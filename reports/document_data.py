"""Plain input for the document builders (workbook, PDF, chart, summary text).

The builders in :mod:`reports.workbook`, :mod:`reports.pdf`, :mod:`reports.chart` and
:mod:`reports.summary` never touch the database: the caller fills a
:class:`DocumentData` from it and hands it over. Everything here is a frozen dataclass
of plain values (``str``, :class:`~decimal.Decimal`, :class:`~datetime.datetime`), so
the builders are pure functions of their input and easy to test.

This module also holds the few helpers every builder shares: measuring all rows with
:func:`reports.measure.capaian`, the short Indonesian label of a capaian status, and
the formatting of working time ("2 hari 3 jam").
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from datetime import date, datetime
from decimal import Decimal

from models.enums import LowerFormula, Polarity, ValueType
from reports.measure import (
    DEFAULT_BANDS, SAKIP_SCALE, Capaian, CapaianStatus, CapPolicy, RatingBand, capaian,
)
from reports.numbers import NumberParseError, format_duration, parse_number

_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}

#: Working minutes in one working day when the caller says nothing (office hours
#: 07:30-16:00 WIB); the bot passes the office's own (``[calendar]`` office hours) as
#: :attr:`DocumentData.day_minutes`.
WORKING_DAY_MINUTES = 510

#: The value an indicator holds: a number, a text (predicate "BB") or nothing yet.
Value = Decimal | str | None

#: Short label shown in the capaian column when no percentage can be computed.
#: The workbook formulas produce exactly these texts (plus the verdict " (tercapai)" /
#: " (belum tercapai)" where :func:`capaian_label` adds it), so the workbook, the PDF
#: and the chart agree.
STATUS_LABELS: dict[CapaianStatus, str] = {
    CapaianStatus.NO_DATA: "Belum ada data",
    CapaianStatus.NO_TARGET: "Belum ada target",
    CapaianStatus.TARGET_ZERO: "Target 0",
    CapaianStatus.REALISATION_ZERO: "Realisasi 0",
    CapaianStatus.NEGATIVE_VALUE: "Nilai negatif",
    CapaianStatus.TEXT_MET: "Tercapai",
    CapaianStatus.TEXT_NOT_MET: "Belum tercapai",
}
#: Statuses whose label gets the verdict appended, as in "Target 0 (tercapai)".
_WITH_VERDICT = frozenset(
    {CapaianStatus.TARGET_ZERO, CapaianStatus.REALISATION_ZERO, CapaianStatus.NEGATIVE_VALUE}
)


@dataclass(frozen=True)
class IndicatorRow:
    """One performance indicator with its target and realisation for the period.

    ``sasaran`` is the goal (sasaran/program) the indicator serves; ``definition`` is
    the explanation / calculation formula shown in column (4). ``target`` and
    ``realisasi`` are :class:`~decimal.Decimal` for numeric and percent indicators
    (a percent indicator holds 85 for 85 %), ``str`` for text indicators (a predicate
    such as "BB"), ``None`` when not filled in. ``evidence`` lists file names or short
    references to the supporting documents (bukti dukung). ``penghambat``, ``upaya``
    and ``pendukung`` are the analysis of the capaian given with the value (LKjIP
    "analisis capaian": hindering factor, follow-up plan, supporting factor), "" when
    not given.
    """

    bidang: str
    sasaran: str
    code: str
    name: str
    definition: str
    unit: str
    polarity: Polarity
    lower_formula: LowerFormula
    value_type: ValueType
    target: Value
    realisasi: Value
    note: str = ""
    evidence: tuple[str, ...] = ()
    # a quarterly cycle (issue 15): ``target``/``realisasi`` are "s.d. triwulan" figures
    # built with ``aggregation`` ("sum", "last", "average"); these are the quarter's own.
    # ``aggregation`` "" means the row has only one pair of figures.
    aggregation: str = ""
    period_target: Value = None
    period_realisasi: Value = None
    # the LKjIP "analisis capaian" of the indicator: hindering factor, follow-up plan,
    # supporting factor (shown in the Analisis column of the PDF and the workbook)
    penghambat: str = ""
    upaya: str = ""
    pendukung: str = ""


#: States of a row of the "Kepatuhan SOP" table (:attr:`StepTiming.state`).
STEP_DONE, STEP_OPEN, STEP_NOT_STARTED, STEP_SKIPPED = "done", "open", "not_started", "skipped"
STEP_RETURNED = "returned"  # its last run sent the documents back; an earlier step is redone
#: States of an agency's receipt (a row with ``counted=False``): the agency's own time.
RECEIPT_RECEIVED, RECEIPT_WAITING, RECEIPT_NOT_SENT = "received", "waiting", "not_sent"


@dataclass(frozen=True)
class StepTiming:
    """How long one SOP step took, in working time, for the "Kepatuhan SOP" table.

    One row per step; step 4 (collect) has one row per bidang (``unit``). The deliver
    step is followed by one row per agency for its receipt (``counted=False``): the
    agency's own time, shown for the record, never measured against the SOP.

    ``standard_text`` is the SOP's wording ("1-5 hari"); ``standard_max_minutes`` is
    its upper bound in working minutes (1 day = :attr:`DocumentData.day_minutes`).
    ``actual_minutes`` is the working time of the step's runs (every round after a
    return added up), up to the record's moment for an open one; ``None`` for a step
    not started. ``state`` is one of the ``STEP_*`` / ``RECEIPT_*`` values; "" (data
    made before states existed) reads as done when ``actual_minutes`` is set.
    """

    number: int
    name: str
    role_title: str
    holder: str
    standard_text: str
    standard_max_minutes: int
    actual_minutes: int | None
    started: datetime | None
    completed: datetime | None
    unit: str = ""
    state: str = ""
    rounds: int = 1
    counted: bool = True

    @property
    def late(self) -> bool:
        """True when the step took (or, still open, has taken) longer than its time
        standard. An agency's receipt is never late: it is not the office's time."""
        return (self.counted and self.actual_minutes is not None
                and self.actual_minutes > self.standard_max_minutes)

    @property
    def label(self) -> str:
        """The step's activity, with the bidang of a step-4 row."""
        return f"{self.name} — {self.unit}" if self.unit else self.name

    @property
    def status(self) -> str:
        """The state in words, e.g. "Selesai, tepat waktu", "Sedang berjalan",
        "Belum dimulai", "Menunggu tanda terima"."""
        state = self.state or (STEP_DONE if self.actual_minutes is not None else STEP_OPEN)
        if not self.counted:
            return {RECEIPT_RECEIVED: "Diterima", RECEIPT_WAITING: "Menunggu tanda terima",
                    RECEIPT_NOT_SENT: "Belum dikirim"}.get(state, state)
        if state == STEP_NOT_STARTED:
            return "Belum dimulai"
        if state == STEP_SKIPPED:
            return "Ditutup tanpa data"
        if state == STEP_RETURNED:
            return "Dikembalikan, menunggu perbaikan"
        if state == STEP_OPEN:
            return "Sedang berjalan, melewati standar" if self.late else "Sedang berjalan"
        text = "Selesai, terlambat" if self.late else "Selesai, tepat waktu"
        return f"{text} ({self.rounds} putaran)" if self.rounds > 1 else text


@dataclass(frozen=True)
class Compliance:
    """The time standard of the SOP in full against the cycle's actual total.

    ``standard_text`` is the sum of every step's upper bound as the SOP reads ("15 hari
    1 jam 25 menit"), ``standard_minutes`` the same in working minutes. ``actual_minutes``
    is the cycle's working time from the start of step 1 to the end of the last step's
    own work (the sending of step 11; the agencies' receipts are their time), or to
    ``as_of`` while the cycle is still under way (``finished`` False). ``as_of`` is the
    moment the record was taken and ``as_of_note`` says which ("saat dokumen ini diberi
    nomor").
    """

    standard_text: str
    standard_minutes: int
    actual_minutes: int | None
    finished: bool
    as_of: datetime | None = None
    as_of_note: str = ""

    @property
    def met(self) -> bool | None:
        """True/False once finished; None while under way but still within the
        standard (an unfinished cycle already past it is False)."""
        if self.actual_minutes is None:
            return None
        if self.actual_minutes > self.standard_minutes:
            return False
        return True if self.finished else None

    @property
    def verdict(self) -> str:
        met = self.met
        if met is True:
            return "Memenuhi standar waktu SOP"
        if met is False:
            return "Melewati standar waktu SOP"
        return "Siklus masih berjalan (belum melewati standar waktu SOP)"


@dataclass(frozen=True)
class Signatory:
    """Who signs the document, printed at the bottom right.

    ``acting`` is "Plh." or "Plt." when a deputy signs, else "". ``signed_at`` dates
    the signature line ("Liwa, 10 Februari 2024"); when ``None`` the builders fall
    back to the letter date, else leave the date blank to be written by hand.
    """

    place: str
    title: str
    name: str
    rank: str
    nip: str
    acting: str = ""
    signed_at: datetime | None = None

    @property
    def full_title(self) -> str:
        """The title with the acting prefix, e.g. "Plh. Kepala Dinas ..."."""
        return f"{self.acting.strip()} {self.title}".strip()


@dataclass(frozen=True)
class Initial:
    """A paraf (initial) on the document: the capacity in which it was given
    ("Sekretaris", "Plh. Sekretaris"), the person's name, and when."""

    capacity: str
    name: str
    at: datetime | None = None


@dataclass(frozen=True)
class DocumentData:
    """Everything a measurement document shows. Filled by the caller from the database."""

    office_name: str
    regency: str
    title: str
    period_label: str
    year: int
    rows: tuple[IndicatorRow, ...]
    steps: tuple[StepTiming, ...] = ()
    compliance: Compliance | None = None
    signatory: Signatory | None = None
    initials: tuple[Initial, ...] = ()
    letter_number: str | None = None
    letter_date: date | None = None
    verification_code: str | None = None
    verification_url_or_text: str | None = None
    cap: CapPolicy | None = None
    bands: tuple[RatingBand, ...] = DEFAULT_BANDS
    example_data: bool = False
    version: int = 1
    audit_head: str | None = None  # "hash (n baris, mode)" of the audit trail (final PDF)
    # the final PDF: True leaves the box for the electronic signature's appearance,
    # False says the document carries none; None (a draft) says nothing
    e_signed: bool | None = None
    # grades of text indicators, worst to best: a better grade than the target is met
    text_scale: tuple[str, ...] = SAKIP_SCALE
    # the quarter of a quarterly document (1-4), None for an annual one
    quarter: int | None = None
    # working minutes in one of the office's working days ("2 hari 3 jam")
    day_minutes: int = WORKING_DAY_MINUTES
    # the office's zone ([calendar] timezone): step times are shown in it, with its label
    timezone: str = "Asia/Jakarta"

    @property
    def zone_label(self) -> str:
        """"WIB", "WITA" or "WIT": the label of the office's zone."""
        from datetime import datetime
        from zoneinfo import ZoneInfo

        from reports.numbers import zone_label

        return zone_label(datetime(self.year, 1, 1, 12, tzinfo=ZoneInfo(self.timezone)))
    # the letterhead (kop) of the first page: the office's address line(s) and an
    # optional logo image file; the Pemda line is made from ``regency``
    address: str = ""
    logo_path: str = ""

    @property
    def office_line(self) -> str:
        """Office and regency in one line, e.g. "Dinas ... Kabupaten Lampung Barat"."""
        office = self.office_name.strip()
        regency = self.regency.strip()
        if regency and regency.lower() not in office.lower():
            return f"{office} {regency}"
        return office

    @property
    def government_line(self) -> str:
        """The Pemda line of the kop: "PEMERINTAH KABUPATEN LAMPUNG BARAT"."""
        regency = " ".join(self.regency.split())
        if not regency:
            return ""
        if regency.upper().startswith("PEMERINTAH"):
            return regency.upper()
        return f"PEMERINTAH {regency.upper()}"

    @property
    def short_title(self) -> str:
        """The title without the office's name when it repeats it (the kop names the
        office once): "Pengukuran Kinerja Dinas X" -> "Pengukuran Kinerja"."""
        title = " ".join(self.title.split())
        for name in (self.office_line, self.office_name):
            name = " ".join(name.split())
            if name and title.lower().endswith(name.lower()) and len(title) > len(name):
                return title[: len(title) - len(name)].strip(" -–,")
        return title

    def column_period(self, cumulative: bool = False) -> tuple[str, str]:
        """The period in the Target and Realisasi column headers: ("Target TW III 2024",
        "Realisasi TW III 2024"), with ``cumulative`` ("Target s.d. TW III 2024",
        "Realisasi s.d. TW III 2024"); an annual document: ("Target 2024",
        "Realisasi 2024")."""
        q = self.quarter_short
        when = f"{'s.d. ' if cumulative else ''}{q} {self.year}".strip() if q else str(self.year)
        return f"Target {when}", f"Realisasi {when}"

    def measured(self) -> list[tuple[IndicatorRow, Capaian]]:
        """Every row with its capaian, computed with :func:`reports.measure.capaian`.

        Computed once per instance (the data is frozen) and shared by the builders.
        """
        return list(self._measured)

    @cached_property
    def _measured(self) -> tuple[tuple[IndicatorRow, Capaian], ...]:
        # cached_property writes the instance __dict__ directly, so it works on a
        # frozen dataclass
        return tuple((row, measure_row(row, self)) for row in self.rows)

    @cached_property
    def split(self) -> bool:
        """True when the rows carry the quarter's own figures beside the "s.d." ones.

        Computed once per instance (the builders ask for every row)."""
        return any(row.aggregation for row in self.rows)

    @property
    def quarter_short(self) -> str:
        """"TW II" for the column headers ("" for an annual document)."""
        return f"TW {_ROMAN.get(self.quarter or 0, '')}".strip() if self.quarter else ""

    def measured_period(self) -> list[tuple[IndicatorRow, Capaian | None]]:
        """Every row with the capaian of the quarter's own figures (None for a row
        without them)."""
        return [(row, measure_row(replace(row, target=row.period_target,
                                          realisasi=row.period_realisasi), self)
                 if row.aggregation else None) for row in self.rows]

    def bidang_groups(self) -> list[tuple[str, list[IndicatorRow]]]:
        """Rows grouped by bidang, bidang in order of first appearance, rows in order."""
        groups: dict[str, list[IndicatorRow]] = {}
        for row in self.rows:
            groups.setdefault(row.bidang, []).append(row)
        return list(groups.items())

    def signature_date(self) -> date | None:
        """The date printed beside the place in the signature block."""
        if self.signatory is not None and self.signatory.signed_at is not None:
            return self.signatory.signed_at.date()
        return self.letter_date


def _as_number(value: object) -> tuple[Decimal | None, str | None]:
    """A numeric indicator's value as Decimal; (None, text) when it is not a number."""
    if value is None or isinstance(value, Decimal):
        return value, None
    if isinstance(value, bool):
        return None, str(value)
    if isinstance(value, int):
        return Decimal(value), None
    if isinstance(value, float):
        return Decimal(repr(value)), None
    try:
        return parse_number(str(value)).value, None
    except NumberParseError:
        return None, str(value)


def measure_row(row: IndicatorRow, data: DocumentData) -> Capaian:
    """The capaian of one row under the document's cap policy and bands.

    Defensive about its input: a numeric indicator whose value arrives as text is
    parsed the Indonesian way ("85,5"); text that is no number gives a NO_DATA result
    whose keterangan names the value, instead of an exception in the middle of a
    document.
    """
    target, realisasi = row.target, row.realisasi
    if ValueType(row.value_type) is not ValueType.TEXT:
        target, bad_t = _as_number(target)
        realisasi, bad_r = _as_number(realisasi)
        if bad_t is not None or bad_r is not None:
            bad = bad_t if bad_t is not None else bad_r
            return Capaian(CapaianStatus.NO_DATA, None, None, None, None,
                           f"Nilai '{bad}' bukan angka")
    return capaian(
        target,
        realisasi,
        polarity=row.polarity,
        lower_formula=row.lower_formula,
        value_type=row.value_type,
        cap=data.cap,
        bands=data.bands,
        text_scale=data.text_scale,
    )


def capaian_label(result: Capaian) -> str:
    """The short text shown in place of a percentage, "" when there is a percentage.

    "Belum ada data", "Belum ada target", "Target 0 (tercapai)", "Realisasi 0
    (tercapai)", "Nilai negatif (belum tercapai)", "Tercapai", "Belum tercapai".
    """
    label = STATUS_LABELS.get(result.status, "")
    if result.status in _WITH_VERDICT and result.reached is not None:
        label += " (tercapai)" if result.reached else " (belum tercapai)"
    return label


def iter_lowest(
    measured: Sequence[tuple[IndicatorRow, Capaian]], count: int = 3
) -> Iterator[tuple[IndicatorRow, Capaian]]:
    """The ``count`` rows with the lowest capaian percentage (rows without one skipped).

    Ties keep document order. Uses a partial sort, so it stays cheap for 5,000 rows.
    """
    import heapq

    with_percent = [
        (item[1].percent, index, item)
        for index, item in enumerate(measured)
        if item[1].percent is not None
    ]
    for _, _, item in heapq.nsmallest(count, with_percent, key=lambda t: (t[0], t[1])):
        yield item


#: The parts of the "analisis capaian" (LKjIP) in the order they are shown.
ANALYSIS_PARTS: tuple[tuple[str, str], ...] = (
    ("pendukung", "Faktor pendukung"),
    ("penghambat", "Faktor penghambat"),
    ("upaya", "Upaya tindak lanjut"),
)


def analysis_text(row: IndicatorRow, result: Capaian | None = None) -> str:
    """The Analisis column of a row, the same in the PDF and the workbook:
    "Faktor penghambat: ...", one labelled line per part that is filled in; a text
    indicator's line first says how its grade compares with the target ("Realisasi (A)
    lebih baik dari target (BB)"), as its capaian cell only says "Tercapai"."""
    lines = []
    if (result is not None and ValueType(row.value_type) is ValueType.TEXT
            and result.keterangan):
        lines.append(result.keterangan)
    for attribute, label in ANALYSIS_PARTS:
        text = " ".join(str(getattr(row, attribute, "") or "").split())
        if text:
            lines.append(f"{label}: {text}")
    return "\n".join(lines)


def short_file_name(name: str, limit: int) -> str:
    """A file name of at most ``limit`` characters for a narrow column: cut where a
    part of it ends (before " ", "-", "_", ".") with "…", the extension kept when it
    fits ("laporan-rekap….pdf"); cut between characters only when no part ends early
    enough."""
    name = " ".join(name.split())
    if len(name) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 5:
        stem, ext = name, ""
    for tail in (("…." + ext) if ext else "…", "…"):
        ends = [i for i, ch in enumerate(stem) if ch in " -_." and 3 <= i <= limit - len(tail)]
        if ends:
            return stem[: ends[-1]] + tail
    return name[: max(1, limit - 1)] + "…"


def format_working_minutes(minutes: int | None, day_minutes: int = WORKING_DAY_MINUTES) -> str:
    """Working time in Indonesian: "2 hari 3 jam", "1 jam 5 menit", "25 menit".

    One working day is ``day_minutes`` minutes (the office's hours, e.g. 07:30-16:00
    is 510: :attr:`DocumentData.day_minutes`). ``None`` (step still open) gives "-";
    zero gives "0 menit".
    """
    if minutes is None:
        return "-"
    return format_duration(minutes, day_minutes)
