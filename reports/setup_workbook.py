"""The office set-up workbook: a fill-in template and its importer.

An office sets itself up (``sopbot setup template`` / ``sopbot setup import``) by filling
one Excel workbook:

* **Petunjuk**  - how to fill it in (generated from the column definitions below);
* **Kantor**    - key/value rows: nama dinas, kabupaten, tempat, kode unit, data contoh;
* **Bidang**    - kode, nama, sekretariat (Ya/Tidak);
* **Pegawai**   - nama, NIP (text!), peran, kode bidang, pangkat, jabatan, kode OPD;
* **Indikator** - kode, kode bidang, tingkat, sasaran, nama, penjelasan, satuan,
  polaritas, rumus turun, jenis nilai, kumulatif, and target column groups
  ``Target YYYY``, ``Target TW I YYYY`` ... ``Target TW IV YYYY`` (any number of years);
* **Pengaturan** (optional) - key/value rows: SOP definition file, reminders, escalation
  chain, receipt reminders;
* **Penomoran** (optional) - one row per document type: kode, jenis, format;
* **Penerima** (optional) - one row per recipient agency: kode OPD, nama.

The Kantor setting rows and the optional sheets are the office's own settings
(``Office.settings``, see ``SETTING_ROWS`` and ``SETTINGS_KEYS``): an empty row or a
deleted sheet is config.toml's value. The reader checks each value's form (with sheet,
row and column); :func:`bot.core.office_setup.finish_settings` resolves the SOP file
(only inside the config folder or the bundled ``bot/data``), completes the document
types and the escalation chain with config.toml's entries and applies config.toml's
rules, naming the cell from :attr:`SetupResult.places`.

:func:`read_setup` checks everything and collects every problem as a
:class:`SetupError` with an Indonesian message; it is all-or-nothing (``spec`` is None
when there is any error) and never raises on a malformed workbook except
:class:`SetupWorkbookError` for a file that is not an xlsx or lacks a required sheet.
:func:`bot.core.office_setup.import_setup` applies the result (reports/ never writes to the
database).

Decisions:

* Columns are found by their header text (case and punctuation ignored, a few aliases),
  so inserting or moving columns does not break the import.
* NIP is 18 digits, kept as text. A whole-number cell is accepted (converted with
  ``str(int)``, no digit lost); a decimal/float cell is refused because Excel has
  already rounded the last digits away. Spaces inside a NIP (``19660101 199003 1 001``)
  are removed. NIP is required for every role except ``staf`` (tenaga honorer have
  none) and ``kontak``.
* Numeric targets: number cells are taken as they are (a cell formatted as percent,
  where Excel stores 85 % as 0,85, is multiplied by 100); text is read with
  :func:`reports.numbers.parse_number` (``85,5``, ``1.250.000``, ``85 %``). A percent
  above 100 is allowed. A date cell (Excel turning ``4.10`` into 4 October) is refused.
* A formula without a stored result (a file written by a program, never opened in
  Excel) is refused rather than read as empty.
* Matching of kode bidang is case-insensitive and resolves to the code written on the
  Bidang sheet; duplicate codes and NIPs are found the same way.
"""
from __future__ import annotations

import datetime as _dt
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.cell.read_only import EMPTY_CELL
from openpyxl.worksheet._read_only import ReadOnlyWorksheet
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from bot.core.office_data import (
    IndicatorSpec,
    OfficeSpec,
    PersonSpec,
    TargetSpec,
    UnitSpec,
)
from models.enums import IndicatorLevel, LowerFormula, Polarity, Role, ValueType
from reports.numbers import NumberParseError, parse_number
from reports.xlsx_limits import XlsxLimits, check_xlsx

__all__ = [
    "SetupError",
    "SetupResult",
    "SetupWorkbookError",
    "SetupTooManyRows",
    "read_setup",
    "write_template",
    "SHEET_GUIDE",
    "SHEET_OFFICE",
    "SHEET_UNITS",
    "SHEET_PEOPLE",
    "SHEET_INDICATORS",
    "SHEET_SETTINGS",
    "SHEET_NUMBERING",
    "SHEET_AGENCIES",
    "VALIDATION_LAST_ROW",
]

SHEET_GUIDE = "Petunjuk"
SHEET_OFFICE = "Kantor"
SHEET_UNITS = "Bidang"
SHEET_PEOPLE = "Pegawai"
SHEET_INDICATORS = "Indikator"
SHEET_SETTINGS = "Pengaturan"
SHEET_NUMBERING = "Penomoran"
SHEET_AGENCIES = "Penerima"
REQUIRED_SHEETS = (SHEET_OFFICE, SHEET_UNITS, SHEET_PEOPLE, SHEET_INDICATORS)
#: sheets an office may leave out: their settings then are the regency's (config.toml)
OPTIONAL_SHEETS = (SHEET_SETTINGS, SHEET_NUMBERING, SHEET_AGENCIES)

VALIDATION_LAST_ROW = 1000  # drop-downs and text format reach this row
NIP_LENGTH = 18
QUARTER_NAMES = ("I", "II", "III", "IV")

HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", start_color="FFD9E1F2", end_color="FFD9E1F2")
TITLE_FONT = Font(bold=True, size=14)
SECTION_FONT = Font(bold=True, size=12)
WRAP = Alignment(wrap_text=True, vertical="top")

# ----------------------------------------------------------------- allowed values

YES, NO = "Ya", "Tidak"
_YES_WORDS = {"ya", "y", "yes", "true", "benar", "1"}
_NO_WORDS = {"tidak", "t", "tdk", "no", "n", "false", "salah", "0", "bukan"}

ROLE_CHOICES = ("kadis", "sekretaris", "kasubag", "kabid", "staf", "kontak")
_ROLE_WORDS: dict[str, Role] = {
    "kadis": Role.KADIS, "kepala dinas": Role.KADIS, "kepala": Role.KADIS,
    "sekretaris": Role.SEKRETARIS, "sekdin": Role.SEKRETARIS,
    "kasubag": Role.KASUBAG, "kasubbag": Role.KASUBAG, "kasubag perencanaan": Role.KASUBAG,
    "kasubbag perencanaan": Role.KASUBAG,
    "kabid": Role.KABID, "kepala bidang": Role.KABID,
    "staf": Role.STAF, "staff": Role.STAF, "pelaksana": Role.STAF,
    "kontak": Role.CONTACT, "kontak opd": Role.CONTACT,
}
ROLES_NEEDING_NIP = {Role.KADIS, Role.SEKRETARIS, Role.KASUBAG, Role.KABID}
ROLES_NEEDING_UNIT = {Role.KABID, Role.STAF}

LEVEL_CHOICES = tuple(level.value for level in IndicatorLevel)
POLARITY_CHOICES = ("naik", "turun")
_POLARITY_WORDS: dict[str, Polarity] = {
    "naik": Polarity.HIGHER, "semakin tinggi semakin baik": Polarity.HIGHER,
    "tinggi": Polarity.HIGHER, "positif": Polarity.HIGHER, "higher": Polarity.HIGHER,
    "turun": Polarity.LOWER, "semakin rendah semakin baik": Polarity.LOWER,
    "rendah": Polarity.LOWER, "negatif": Polarity.LOWER, "lower": Polarity.LOWER,
}
FORMULA_CHOICES = ("2T-R", "T/R")
_FORMULA_WORDS: dict[str, LowerFormula] = {
    "2t-r": LowerFormula.MIRROR, "(2t-r)/t": LowerFormula.MIRROR, "mirror": LowerFormula.MIRROR,
    "t/r": LowerFormula.RATIO, "ratio": LowerFormula.RATIO, "rasio": LowerFormula.RATIO,
}
FORMULA_LABEL = {LowerFormula.MIRROR: "2T-R", LowerFormula.RATIO: "T/R"}
VALUE_TYPE_CHOICES = ("angka", "persen", "teks")
_VALUE_TYPE_WORDS: dict[str, ValueType] = {
    "angka": ValueType.NUMERIC, "numerik": ValueType.NUMERIC, "bilangan": ValueType.NUMERIC,
    "numeric": ValueType.NUMERIC,
    "persen": ValueType.PERCENT, "persentase": ValueType.PERCENT, "%": ValueType.PERCENT,
    "percent": ValueType.PERCENT,
    "teks": ValueType.TEXT, "text": ValueType.TEXT, "predikat": ValueType.TEXT,
}
AGGREGATION_CHOICES = ("jumlah", "terakhir", "rata-rata")
_AGGREGATION_WORDS: dict[str, str] = {
    "jumlah": "sum", "jumlah triwulan": "sum", "sum": "sum", "total": "sum",
    "terakhir": "last", "nilai terakhir": "last", "last": "last",
    "rata-rata": "average", "rata rata": "average", "ratarata": "average",
    "average": "average",
}
AGGREGATION_LABEL = {"sum": "jumlah", "last": "terakhir", "average": "rata-rata"}
VALUE_TYPE_LABEL = {ValueType.NUMERIC: "angka", ValueType.PERCENT: "persen",
                    ValueType.TEXT: "teks"}
POLARITY_LABEL = {Polarity.HIGHER: "naik", Polarity.LOWER: "turun"}


# ----------------------------------------------------------------- results


class SetupWorkbookError(Exception):
    """The file cannot be read as a set-up workbook at all (Indonesian message)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SetupError:
    """One problem in the workbook; ``row`` is the Excel row number (1 = header)."""

    sheet: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.sheet
        if self.row is not None:
            where += f" baris {self.row}"
        if self.column:
            where += ("," if self.row is not None else "") + f" kolom {self.column}"
        return f"{where}: {self.message}"


@dataclass
class SetupResult:
    spec: OfficeSpec | None
    errors: list[SetupError] = field(default_factory=list)
    #: where each setting was written: "section.key" -> (sheet, row, column), so that a
    #: check made on import (``bot.core.office_setup``) names the cell
    places: dict[str, tuple[str, int | None, str | None]] = field(default_factory=dict)

    def place(self, message: str) -> tuple[str, int | None, str | None]:
        """The cell of the setting a ``ConfigError`` message starts with
        (``reminders.share_of_time: ...``); the Kantor sheet when none is known."""
        head = message.split(":", 1)[0].strip().strip("[]").replace("] ", ".")
        best = max((k for k in self.places if head == k or head.startswith(k + ".")
                    or head.startswith(k + "[")), key=len, default=None)
        return self.places[best] if best else (SHEET_OFFICE, None, "Nilai")

    @property
    def ok(self) -> bool:
        return self.spec is not None and not self.errors


# ----------------------------------------------------------------- column definitions


@dataclass(frozen=True)
class Col:
    key: str
    header: str
    width: float
    note: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    max_len: int | None = None


OFFICE_ROWS: tuple[Col, ...] = (
    Col("name", "Nama Dinas", 0, "Nama lengkap perangkat daerah, misalnya "
        "\"Dinas Tenaga Kerja dan Perindustrian\".", True,
        ("nama dinas", "nama kantor", "nama opd", "nama perangkat daerah", "nama"),
        max_len=200),
    Col("regency", "Kabupaten/Kota", 0, "Pemerintah daerah, misalnya "
        "\"Kabupaten Lampung Barat\".", True, ("kabupaten", "kota", "pemerintah"),
        max_len=200),
    Col("place", "Tempat (kota penandatanganan)", 0, "Kota yang ditulis di atas tanda tangan, "
        "misalnya \"Liwa\".", True, ("tempat", "kota penandatanganan"), max_len=100),
    Col("unit_code", "Kode Unit", 0, "Kode unit untuk nomor surat, misalnya \"II.08\" "
        "(nomor surat {nomor}).", True, ("kode unit", "kode"), max_len=40),
    Col("example", "Data Contoh", 0, "Ya bila isi buku kerja ini hanya data contoh; setiap "
        "dokumen lalu diberi tanda \"DATA CONTOH\". Untuk kantor sungguhan isi Tidak.",
        False, ("data contoh", "contoh"), (YES, NO)),
    # the office's own settings (``Office.settings``); empty: config.toml's defaults
    Col("address", "Alamat Kop Surat", 0, "Alamat di kop dokumen: jalan, telepon, surel, "
        "kode pos. Kosongkan bila tidak dipakai.", False, ("alamat kop", "alamat"),
        max_len=300),
    Col("timezone", "Zona Waktu", 0, "WIB, WITA atau WIT (atau Asia/Jakarta, Asia/Makassar, "
        "Asia/Jayapura). Kosong: bawaan kabupaten.", False, ("zona waktu", "zona"),
        max_len=40),
    Col("office_start", "Jam Masuk", 0, "Jam kantor mulai, misalnya 07:30. Kosong: bawaan.",
        False, ("jam masuk", "jam mulai"), max_len=5),
    Col("office_end", "Jam Pulang", 0, "Jam kantor selesai, misalnya 16:00. Kosong: bawaan.",
        False, ("jam pulang", "jam selesai"), max_len=5),
    Col("number_format", "Format Nomor Surat", 0, "Misalnya {kode}/{urut}/{unit}/{tahun}; "
        "harus memuat {urut}. Tersedia: {kode} {urut} {jenis} {unit} {tahun} {bulan} "
        "{bulan_romawi}. Kosong: bawaan.", False, ("format nomor surat", "format nomor"),
        max_len=100),
    Col("number_kode", "Kode Klasifikasi Surat", 0, "Kode klasifikasi arsip untuk jenis "
        "dokumen yang tidak diberi kode sendiri di lembar Penomoran, misalnya 050. "
        "Kosong: bawaan.", False, ("kode klasifikasi", "kode klasifikasi arsip"), max_len=40),
    Col("number_jenis", "Kode Jenis Naskah", 0, "Kode jenis naskah untuk jenis dokumen yang "
        "tidak diberi kode sendiri di lembar Penomoran. Tulis - untuk tanpa kode jenis. "
        "Kosong: bawaan.", False, ("kode jenis naskah", "jenis naskah"), max_len=40),
)
#: the Kantor rows that are settings: row key -> (section, key) of ``Office.settings``
SETTING_ROWS = {"address": ("office", "address"), "timezone": ("calendar", "timezone"),
                "office_start": ("calendar", "office_start"),
                "office_end": ("calendar", "office_end"),
                "number_format": ("numbering", "format"),
                "number_kode": ("numbering", "kode"),
                "number_jenis": ("numbering", "jenis")}
#: written in a code cell for "none" (an empty cell keeps the regency default)
NONE_MARK = "-"
#: the placeholders of a letter number format (``bot.config.NumberingConfig.number``)
NUMBER_FIELDS = {"kode": "050", "urut": 1, "jenis": "X", "unit": "II.08", "tahun": 2024,
                 "bulan": 1, "bulan_romawi": "I"}

# The Pengaturan sheet: the office's reminder, escalation and delivery settings and its
# SOP definition, key/value rows like Kantor. The kind of each row says how it is read.
NO_ESCALATION = "tidak ada"
ESCALATION_CHOICES = ("kadis", "sekretaris", "kasubag", "kabid", "staf", NO_ESCALATION)
#: the roles whose overdue steps are escalated (the Kepala Dinas has nobody above)
ESCALATED_ROLES = ("staf", "kabid", "kasubag", "sekretaris")
SETTINGS_ROWS: tuple[Col, ...] = (
    Col("sop_definition", "Definisi SOP", 0, "Nama berkas definisi SOP (.toml) bila kantor "
        "memakai SOP sendiri, misalnya sop_dinas_kesehatan.toml. Demi keamanan hanya berkas "
        "di folder config.toml (boleh di subfolder-nya) atau definisi bawaan bot (folder "
        "bot/data) yang dapat dipakai; jalur lain ditolak. Kosong: bawaan.", False,
        ("definisi sop", "berkas sop"), max_len=200),
    Col("share_of_time", "Pengingat Pertama (% Waktu)", 0, "Untuk langkah berwaktu hari: "
        "pengingat dikirim setelah sekian persen waktu langkah berlalu, 1 sampai 99, "
        "misalnya 50 untuk separuh waktu. Kosong: bawaan.", False,
        ("pengingat pertama", "persen waktu pengingat")),
    Col("last_day_morning", "Pengingat Pagi Hari Terakhir", 0, "Ya: pengingat pada pagi hari "
        "kerja terakhir sebelum tenggat. Kosong: bawaan.", False,
        ("pengingat hari terakhir",), (YES, NO)),
    Col("office_hours_only", "Pengingat Hanya pada Jam Kerja", 0, "Ya: pengingat hanya "
        "dikirim pada jam kerja (yang jatuh di luar jam kerja dikirim saat kantor buka). "
        "Kosong: bawaan.", False, ("pengingat hanya jam kerja", "hanya jam kerja"),
        (YES, NO)),
    Col("escalation_interval_working_days", "Eskalasi Diulang Setiap (Hari Kerja)", 0,
        "Setelah tenggat lewat, atasan diberi tahu lagi setiap sekian hari kerja, minimal 1. "
        "Kosong: bawaan.", False, ("selang eskalasi", "eskalasi diulang setiap")),
    *(Col(f"escalation_{role}", f"Eskalasi dari {role}", 0, f"Bila langkah {role} melewati "
          "tenggat, peran atasan yang diberi tahu; \"tidak ada\" bila tidak ada yang diberi "
          "tahu. Kosong: bawaan.", False, (), ESCALATION_CHOICES)
      for role in ESCALATED_ROLES),
    Col("digest_enabled", "Ringkasan Harian", 0, "Ya: ringkasan harian untuk Kadis, "
        "Sekretaris dan Kasubag saat kantor buka. Kosong: bawaan.", False, (), (YES, NO)),
    Col("quarterly_prompt", "Tawaran Siklus Baru", 0, "Ya: tawaran memulai siklus triwulan/"
        "tahunan pada hari kerja pertama setelah periode berakhir. Kosong: bawaan.", False,
        ("tawaran siklus",), (YES, NO)),
    Col("receipt_reminder_days", "Pengingat Tanda Terima Setelah (Hari Kerja)", 0,
        "Kontak OPD penerima diingatkan mengonfirmasi tanda terima setelah sekian hari kerja "
        "sejak dokumen dikirim, lalu tiap sekian hari kerja lagi; minimal 1. Kosong: bawaan.",
        False, ("pengingat tanda terima setelah",)),
    Col("receipt_reminder_max", "Pengingat Tanda Terima Paling Banyak", 0, "Berapa kali "
        "paling banyak kontak OPD diingatkan; 0 = tidak diingatkan. Kosong: bawaan.", False,
        ("pengingat tanda terima paling banyak",)),
)
#: the Pengaturan rows: row key -> (section, key, kind) of ``Office.settings``
SETTINGS_KEYS: dict[str, tuple[str, str, str]] = {
    "sop_definition": ("sop", "definition", "text"),
    "share_of_time": ("reminders", "share_of_time", "percent"),
    "last_day_morning": ("reminders", "last_day_morning", "yes_no"),
    "office_hours_only": ("reminders", "office_hours_only", "yes_no"),
    "escalation_interval_working_days": ("reminders", "escalation_interval_working_days",
                                         "days"),
    **{f"escalation_{role}": ("reminders", "escalation", "role") for role in ESCALATED_ROLES},
    "digest_enabled": ("reminders", "digest_enabled", "yes_no"),
    "quarterly_prompt": ("reminders", "quarterly_prompt", "yes_no"),
    "receipt_reminder_days": ("delivery", "receipt_reminder_days", "days"),
    "receipt_reminder_max": ("delivery", "receipt_reminder_max", "count"),
}

#: the document types the bot numbers itself (key -> what it is), offered on Penomoran
KNOWN_DOCUMENT_TYPES = {"pengukuran_kinerja": "Laporan Pengukuran Kinerja"}
NUMBERING_COLS: tuple[Col, ...] = (
    Col("key", "Jenis Dokumen", 24, "Kunci jenis dokumen, huruf kecil dan garis bawah: "
        "pengukuran_kinerja = laporan pengukuran kinerja yang disusun bot. Satu baris per "
        "jenis; jenis yang tidak ditulis memakai bawaan.", True, ("kunci jenis dokumen",),
        max_len=40),
    Col("nama", "Nama Dokumen", 40, "Nama jenis dokumen dalam teks bantuan, misalnya "
        "\"Laporan Pengukuran Kinerja\". Kosong: bawaan.", False, ("nama",), max_len=120),
    Col("kode", "Kode Klasifikasi", 18, "Kode klasifikasi arsip jenis ini, misalnya 050. "
        "Kosong: bawaan (atau Kode Klasifikasi Surat di lembar Kantor).", False,
        ("kode klasifikasi arsip", "kode"), max_len=40),
    Col("jenis", "Kode Jenis Naskah", 18, "Kode jenis naskah, misalnya KPTS untuk "
        "keputusan; laporan biasanya tanpa kode jenis: tulis - . Kosong: bawaan.", False,
        ("jenis naskah",), max_len=40),
    Col("format", "Format Nomor", 36, "Format nomor khusus jenis ini, misalnya "
        "{kode}/{urut}/{jenis}/{unit}/{tahun}; harus memuat {urut}. Kosong: bawaan (Format "
        "Nomor Surat di lembar Kantor).", False, ("format",), max_len=100),
)

AGENCY_COLS: tuple[Col, ...] = (
    Col("key", "Kode OPD", 16, "Kode singkat OPD penerima, unik, misalnya bappeda. Pegawai "
        "berperan kontak dengan Kode OPD yang sama menerima dokumen.", True,
        ("kode opd penerima", "kode"), max_len=40),
    Col("name", "Nama OPD", 70, "Nama lengkap OPD penerima dokumen, misalnya \"Bappeda "
        "Kabupaten Lampung Barat\".", True, ("nama opd penerima", "nama"), max_len=200),
)
ZONES = {"wib": "Asia/Jakarta", "wita": "Asia/Makassar", "wit": "Asia/Jayapura"}

UNIT_COLS: tuple[Col, ...] = (
    Col("code", "Kode", 12, "Kode singkat bidang, unik, misalnya SEK, PPTK, IND. Dipakai di "
        "lembar Pegawai dan Indikator.", True, ("kode bidang",), max_len=40),
    Col("name", "Nama", 60, "Nama lengkap bidang atau sekretariat.", True,
        ("nama bidang",), max_len=200),
    Col("secretariat", "Sekretariat", 14, "Ya untuk Sekretariat (tempat Sekretaris dan "
        "Kasubag Perencanaan), Tidak untuk bidang lain. Kosong berarti Tidak.", False,
        ("sekretariat ya tidak",), (YES, NO)),
)

PEOPLE_COLS: tuple[Col, ...] = (
    Col("name", "Nama", 40, "Nama lengkap dengan gelar, seperti ditulis di bawah tanda "
        "tangan.", True, ("nama pegawai", "nama lengkap"), max_len=200),
    Col("nip", "NIP", 22, "NIP 18 angka (spasi di dalamnya diabaikan). Kolom ini "
        "berformat Teks supaya angka tidak dibulatkan Excel. Wajib kecuali untuk staf "
        "honorer dan kontak.", False, ("nip pegawai",)),
    Col("role", "Peran", 14, "Peran dalam SOP: kadis (Kepala Dinas), sekretaris, kasubag "
        "(Kasubag Perencanaan), kabid (Kepala Bidang / penanggung jawab data bidang), "
        "staf, kontak (petugas di OPD penerima dokumen).", True, (), ROLE_CHOICES),
    Col("unit", "Kode Bidang", 14, "Kode dari lembar Bidang. Wajib untuk kabid dan staf; "
        "kosongkan untuk kadis dan kontak.", False, ("bidang", "kode unit")),
    Col("rank", "Pangkat/Golongan", 26, "Pangkat dan golongan, misalnya \"Pembina, IV/a\".",
        False, ("pangkat", "golongan", "pangkat golongan"), max_len=100),
    Col("position", "Jabatan", 44, "Jabatan lengkap, misalnya \"Kepala Bidang Perindustrian\". "
        "Untuk kontak: nama OPD-nya.", False, (), max_len=200),
    Col("agency", "Kode OPD", 14, "Hanya untuk peran kontak: kode singkat OPD penerima "
        "dokumen, misalnya bappeda, inspektorat.", False, ("opd", "kode opd terkait"),
        max_len=40),
)

INDICATOR_COLS: tuple[Col, ...] = (
    Col("code", "Kode", 12, "Kode indikator, unik, misalnya PPTK-01.", True,
        ("kode indikator",), max_len=40),
    Col("unit", "Kode Bidang", 14, "Kode bidang penanggung jawab data (dari lembar Bidang).",
        True, ("bidang",)),
    Col("level", "Tingkat", 12, "Tingkat dalam pohon kinerja: tujuan, sasaran, program "
        "atau kegiatan.",
        True, ("tingkatan", "level"), LEVEL_CHOICES),
    Col("sasaran", "Sasaran/Program yang Didukung", 40, "Sasaran strategis atau program "
        "yang didukung indikator ini (kolom Sasaran pada tabel pengukuran).", False,
        ("sasaran", "sasaran strategis", "program", "sasaran program"), ),
    Col("name", "Nama Indikator", 50, "Nama indikator kinerja.", True,
        ("indikator", "indikator kinerja", "nama")),
    Col("definition", "Penjelasan/Formulasi", 50, "Penjelasan atau rumus perhitungan, "
        "misalnya \"Peserta lulus / peserta pelatihan x 100%\".", False,
        ("penjelasan", "formulasi", "definisi", "penjelasan formulasi perhitungan")),
    Col("uom", "Satuan", 12, "Satuan: %, orang, unit, dokumen, Rp, predikat ...", False,
        ("satuan ukur",), max_len=60),
    Col("polarity", "Polaritas", 12, "naik = semakin tinggi semakin baik (capaian = R/T x "
        "100%); turun = semakin rendah semakin baik, misalnya tingkat pengangguran.", True,
        ("arah",), POLARITY_CHOICES),
    Col("formula", "Rumus Turun", 13, "Hanya untuk polaritas turun: 2T-R (bawaan, capaian = "
        "(2T-R)/T x 100%) atau T/R (capaian = T/R x 100%). Kosong berarti 2T-R.", False,
        ("rumus", "rumus capaian"), FORMULA_CHOICES),
    Col("value_type", "Jenis Nilai", 12, "angka, persen (tulis 85 untuk 85%) atau teks "
        "(misalnya predikat \"BB\").", True, ("jenis", "tipe nilai"), VALUE_TYPE_CHOICES),
    Col("cumulative", "Kumulatif", 12, "Ya bila realisasi triwulan menjumlah sejak awal "
        "tahun (TW III mencakup TW I-II); Tidak bila per triwulan. Kosong berarti Tidak.",
        False, (), (YES, NO)),
    Col("aggregation", "Agregasi Triwulan", 14, "Cara menghitung realisasi s.d. triwulan: "
        "jumlah = jumlah realisasi tiap triwulan (diisi realisasi triwulan itu saja); "
        "rata-rata = rata-rata tiap triwulan (diisi realisasi triwulan itu saja); "
        "terakhir = angka triwulan terakhir (diisi realisasi s.d. triwulan itu). "
        "Kosong berarti terakhir.", False, ("agregasi", "cara agregasi"), AGGREGATION_CHOICES),
)

TARGET_NOTE_ANNUAL = ("Target tahunan {year}. Angka boleh ditulis 85,5 atau 1.250.000; "
                      "untuk jenis teks tulis teksnya (misalnya BB). Kosong = tidak ada target.")
TARGET_NOTE_QUARTER = ("Target sampai dengan Triwulan {q} {year} (untuk indikator kumulatif: "
                       "angka kumulatif). Kosong = tidak ada target triwulan ini.")
_TARGET_HEADER = re.compile(
    r"^target\s+(?:(?:tw|triwulan)\s*(iv|iii|ii|i|[1-4])\s+)?(\d{4})$", re.IGNORECASE)


def target_header(year: int, period: int) -> str:
    return f"Target {year}" if period == 0 else f"Target TW {QUARTER_NAMES[period - 1]} {year}"


def _parse_target_header(text: str) -> tuple[int, int] | None:
    m = _TARGET_HEADER.match(" ".join(text.split()))
    if not m:
        return None
    q = m.group(1)
    if q is None:
        period = 0
    elif q.isdigit():
        period = int(q)
    else:
        period = QUARTER_NAMES.index(q.upper()) + 1
    return int(m.group(2)), period


# ----------------------------------------------------------------- the template


def _style_header(ws: Worksheet, cols: Iterable[tuple[str, float, str]]) -> None:
    for idx, (header, width, note) in enumerate(cols, start=1):
        cell = ws.cell(row=1, column=idx, value=header)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        comment = Comment(note, "SOP Bot")
        comment.width, comment.height = 320, 140
        cell.comment = comment
        ws.column_dimensions[get_column_letter(idx)].width = width
    ws.freeze_panes = "A2"
    ws.row_dimensions[1].height = 32


def _list_validation(ws: Worksheet, column: int, formula: str, prompt: str,
                     *, first_row: int = 2, last_row: int = VALIDATION_LAST_ROW) -> DataValidation:
    dv = DataValidation(type="list", formula1=formula, allow_blank=True,
                        showDropDown=False, showErrorMessage=True, showInputMessage=True)
    dv.errorTitle = "Nilai tidak dikenal"
    dv.error = f"Pilih dari daftar. {prompt}"[:255]
    dv.promptTitle = "Pilih dari daftar"[:32]
    dv.prompt = prompt[:255]
    letter = get_column_letter(column)
    dv.add(f"{letter}{first_row}:{letter}{last_row}")
    ws.add_data_validation(dv)
    return dv


def _choices_formula(choices: Iterable[str]) -> str:
    return '"' + ",".join(choices) + '"'


def _excel_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


#: the unit_code help's example number when the caller gives none (the default config)
DEFAULT_NUMBER_EXAMPLE = "Laporan Pengukuran Kinerja: 050/123/II.08/2024"


def _note(col: Col, number_example: str) -> str:
    return col.note.replace("{nomor}", number_example)


def _guide_rows(year: int, number_example: str = DEFAULT_NUMBER_EXAMPLE
                ) -> list[tuple[str, str]]:
    """(kind, text) rows of the Petunjuk sheet; kind is title/section/text."""
    rows: list[tuple[str, str]] = [
        ("title", "Petunjuk Pengisian Buku Kerja Penyiapan Kantor"),
        ("text", "Buku kerja ini mengisi data kantor untuk Bot SOP Pengumpulan dan Pengukuran "
                 "Data Kinerja (SAKIP): identitas dinas, bidang, pegawai dan indikator "
                 "kinerja beserta targetnya. Setelah diisi, impor dengan perintah "
                 "\"sopbot setup import NAMA-BERKAS.xlsx\"."),
        ("text", "Aturan umum: isi mulai baris 2 (baris 1 adalah judul kolom; jangan ubah "
                 "judulnya). Arahkan tetikus ke judul kolom untuk membaca penjelasannya. "
                 "Kolom berpilihan memiliki daftar tarik-turun. Baris yang seluruhnya "
                 "kosong dilewati."),
        ("text", "Impor bersifat semua-atau-tidak-sama-sekali: bila ada satu kesalahan, "
                 "tidak ada yang disimpan dan semua kesalahan dicantumkan beserta lembar, "
                 "baris dan kolomnya. Perbaiki lalu impor ulang. Impor ulang memperbarui "
                 "data yang sudah ada (dicocokkan menurut kode bidang, NIP, kode indikator) "
                 "dan mengganti pengaturan kantor (lihat bagian Pengaturan kantor)."),
        ("text", "Penulisan angka: gaya Indonesia, titik pemisah ribuan dan koma desimal "
                 "(85,5 atau 1.250.000). Sel angka biasa juga diterima. Untuk jenis persen "
                 "tulis angkanya saja: 85 berarti 85%. Target persen di atas 100 boleh."),
        ("section", f"Lembar {SHEET_OFFICE}"),
        ("text", "Isi kolom Nilai pada setiap baris:"),
    ]
    rows += [("text", f"- {c.header}: {_note(c, number_example)}"
              + ("" if c.required else " (boleh kosong)")) for c in OFFICE_ROWS]
    rows += [
        ("section", "Pengaturan kantor"),
        ("text", "Baris Alamat Kop Surat sampai Kode Jenis Naskah di lembar Kantor serta "
                 f"lembar {SHEET_SETTINGS}, {SHEET_NUMBERING} dan {SHEET_AGENCIES} adalah "
                 "pengaturan kantor ini sendiri. Yang dikosongkan, dan lembar yang dihapus, "
                 "memakai bawaan kabupaten (config.toml); Keterangan menyebut nilai "
                 "bawaannya."),
        ("text", "Setiap impor mengganti seluruh pengaturan kantor dengan isi buku kerja: "
                 "pengaturan yang dahulu diisi lalu kini dikosongkan kembali ke bawaan "
                 "kabupaten. Kecuali Zona Waktu: bila kosong, zona yang sudah tercatat untuk "
                 "kantor ini (misalnya dari \"sopbot office add --zona\") tetap dipakai."),
        ("section", f"Lembar {SHEET_SETTINGS}"),
        ("text", "Isi kolom Nilai pada baris yang ingin diubah; Ya/Tidak dan peran dipilih "
                 "dari daftar tarik-turun:"),
    ]
    rows += [("text", f"- {c.header}: {c.note}"
              + (" Pilihan: " + ", ".join(c.choices) + "." if c.choices else ""))
             for c in SETTINGS_ROWS]
    rows.append(("text", "Definisi SOP: demi keamanan buku kerja tidak dapat menunjuk berkas "
                         "sembarang. Nama berkas dicari di folder config.toml (beserta "
                         "subfolder-nya), lalu di definisi bawaan bot (bot/data); jalur di "
                         "luar kedua folder itu, jalur mutlak dan berkas yang bukan .toml "
                         "ditolak, begitu pula berkas yang tidak ada atau isinya bukan "
                         "definisi SOP yang sah."))
    for sheet, cols, intro in (
            (SHEET_NUMBERING, NUMBERING_COLS, "Satu baris per jenis dokumen yang nomornya "
             "diatur kantor ini. Jenis yang tidak ditulis, dan sel yang kosong, memakai "
             "bawaan kabupaten untuk jenis itu."),
            (SHEET_AGENCIES, AGENCY_COLS, "Satu baris per OPD penerima dokumen (langkah "
             "penyampaian). Bila lembar ini berisi, daftar ini menggantikan daftar "
             "bawaan kabupaten seluruhnya, dan Kode OPD setiap pegawai berperan kontak harus "
             "ada di sini. Lembar kosong: daftar bawaan kabupaten.")):
        rows += [("section", f"Lembar {sheet}"), ("text", intro)]
        rows += [("text", f"- {c.header}{' (wajib)' if c.required else ''}: {c.note}")
                 for c in cols]
    for sheet, cols in ((SHEET_UNITS, UNIT_COLS), (SHEET_PEOPLE, PEOPLE_COLS),
                        (SHEET_INDICATORS, INDICATOR_COLS)):
        rows.append(("section", f"Lembar {sheet}"))
        for c in cols:
            text = f"- {c.header}{' (wajib)' if c.required else ''}: {c.note}"
            if c.choices:
                text += " Pilihan: " + ", ".join(c.choices) + "."
            rows.append(("text", text))
        if sheet == SHEET_PEOPLE:
            rows.append(("text", "Harus ada tepat satu kadis, tepat satu sekretaris dan "
                                 "sekurang-kurangnya satu kasubag. Setiap bidang (selain "
                                 "sekretariat) yang memiliki indikator harus memiliki kabid."))
        if sheet == SHEET_INDICATORS:
            rows += [
                ("text", f"- {target_header(year, 0)}, {target_header(year, 1)} ... "
                         f"{target_header(year, 4)}: target tahunan dan target setiap "
                         "triwulan. Kosong berarti tidak ada target untuk periode itu."),
                ("text", "Target tahun lain dapat ditambahkan sebagai kelompok kolom baru "
                         f"dengan judul yang sama polanya, misalnya \"Target {year + 1}\", "
                         f"\"Target TW I {year + 1}\" ... \"Target TW IV {year + 1}\"."),
            ]
    return rows


def _setting_cell(kind: str, value: Any) -> Any:
    """A setting as it is written in its cell (the reverse of the reading)."""
    if value is None:
        return None
    if kind == "yes_no":
        return YES if value else NO
    if kind == "percent":
        return _excel_number(Decimal(str(round(value * 100, 4))).normalize())
    return value


def _setting_rows_values(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Row key -> cell value of the Kantor and Pengaturan setting rows for ``settings``
    (``Office.settings`` shape; an escalation chain lists every role it escalates)."""
    settings = settings or {}
    out: dict[str, Any] = {}
    for key, (section, name) in SETTING_ROWS.items():
        value = (settings.get(section) or {}).get(name)
        if key == "number_jenis" and value == "":
            value = NONE_MARK
        out[key] = value if value != "" else None
    for key, (section, name, kind) in SETTINGS_KEYS.items():
        value = (settings.get(section) or {}).get(name)
        if kind == "role":
            if value is None:
                out[key] = None
                continue
            role = key.removeprefix("escalation_")
            value = value.get(role) or NO_ESCALATION
        out[key] = _setting_cell(kind, value if value != "" else None)
    return out


def _default_note(key: str, defaults: dict[str, Any] | None) -> str:
    """" Bawaan kabupaten: 50." for the Keterangan of a setting row."""
    if not defaults:
        return ""
    value = _setting_rows_values(defaults).get(key)
    if key == "sop_definition" and value is None:
        value = "definisi bawaan bot"
    if value is None or value == "":
        value = "kosong"
    return f" Bawaan kabupaten: {value}."


def example_settings() -> dict[str, Any]:
    """Settings that show the Penomoran and Penerima sheets filled in (the example
    workbook, ``sopbot setup template --example``): the example office's document type
    and the recipient agencies its contact person belongs to."""
    from bot.config import DeliveryConfig, NumberingConfig

    types = {key: {"nama": kind.nama, "kode": kind.kode, "jenis": kind.jenis,
                   "format": kind.format} for key, kind in NumberingConfig().types.items()}
    return {"numbering": {"types": types},
            "delivery": {"agencies": [{"key": a.key, "name": a.name}
                                      for a in DeliveryConfig().agencies]}}


def write_template(path: Path | str, *, year: int, example: OfficeSpec | None = None,
                   number_example: str = DEFAULT_NUMBER_EXAMPLE,
                   defaults: dict[str, Any] | None = None) -> Path:
    """Write the fill-in workbook to ``path``; pre-filled with ``example`` when given
    (its ``settings`` too: the Kantor setting rows and the Pengaturan, Penomoran and
    Penerima sheets). ``number_example``: a letter number in the office's configured
    format (``NumberingConfig.example``), shown in the help of the unit code.
    ``defaults``: the regency's values (``bot.config.office_settings``), named in the
    Keterangan of each setting row."""
    path = Path(path)
    wb = Workbook()
    settings = (example.settings if example else None) or {}
    setting_values = _setting_rows_values(settings)

    # Petunjuk
    ws = wb.active
    ws.title = SHEET_GUIDE
    ws.column_dimensions["A"].width = 110
    for r, (kind, text) in enumerate(_guide_rows(year, number_example), start=1):
        cell = ws.cell(row=r, column=1, value=text)
        cell.alignment = WRAP
        if kind == "title":
            cell.font = TITLE_FONT
        elif kind == "section":
            cell.font = SECTION_FONT

    # Kantor
    ws = wb.create_sheet(SHEET_OFFICE)
    _style_header(ws, [("Isian", 32, "Nama isian (jangan diubah)."),
                       ("Nilai", 50, "Isi nilainya di kolom ini."),
                       ("Keterangan", 80, "Penjelasan setiap isian.")])
    values = {
        "name": example.name if example else "",
        "regency": example.regency if example else "",
        "place": example.place if example else "",
        "unit_code": example.unit_code if example else "",
        "example": (YES if example.example_data else NO) if example else NO,
        **{key: setting_values[key] for key in SETTING_ROWS},
    }
    for r, col in enumerate(OFFICE_ROWS, start=2):
        ws.cell(row=r, column=1, value=col.header).font = HEADER_FONT
        ws.cell(row=r, column=2, value=values[col.key] or None).number_format = "@"
        note = _note(col, number_example) + (_default_note(col.key, defaults)
                                             if col.key in SETTING_ROWS else "")
        ws.cell(row=r, column=3, value=note).alignment = WRAP
        if col.choices:
            _list_validation(ws, 2, _choices_formula(col.choices), col.note,
                             first_row=r, last_row=r)

    # Bidang
    ws = wb.create_sheet(SHEET_UNITS)
    _style_header(ws, [(c.header, c.width, c.note) for c in UNIT_COLS])
    _list_validation(ws, 3, _choices_formula((YES, NO)), UNIT_COLS[2].note)
    for r, u in enumerate(example.units if example else (), start=2):
        ws.cell(row=r, column=1, value=u.code)
        ws.cell(row=r, column=2, value=u.name)
        ws.cell(row=r, column=3, value=YES if u.is_secretariat else NO)
    unit_range = f"={quote_sheetname(SHEET_UNITS)}!$A$2:$A${VALIDATION_LAST_ROW}"

    # Pegawai
    ws = wb.create_sheet(SHEET_PEOPLE)
    _style_header(ws, [(c.header, c.width, c.note) for c in PEOPLE_COLS])
    ws.column_dimensions["B"].number_format = "@"  # NIP as text: new cells too
    _list_validation(ws, 3, _choices_formula(ROLE_CHOICES), PEOPLE_COLS[2].note)
    _list_validation(ws, 4, unit_range, "Kode bidang dari lembar Bidang.")
    for r, p in enumerate(example.people if example else (), start=2):
        ws.cell(row=r, column=1, value=p.name)
        nip = ws.cell(row=r, column=2, value=p.nip)
        nip.number_format = "@"
        ws.cell(row=r, column=3, value=p.role.value)
        ws.cell(row=r, column=4, value=p.unit_code)
        ws.cell(row=r, column=5, value=p.rank or None)
        ws.cell(row=r, column=6, value=p.position or None)
        ws.cell(row=r, column=7, value=p.agency_key)

    # Indikator
    ws = wb.create_sheet(SHEET_INDICATORS)
    years = sorted({year} | {t.year for i in (example.indicators if example else ())
                             for t in i.targets})
    years.remove(year)
    years.insert(0, year)
    target_cols = [(y, p) for y in years for p in range(5)]
    headers = [(c.header, c.width, c.note) for c in INDICATOR_COLS]
    headers += [(target_header(y, p), 13 if p == 0 else 15,
                 TARGET_NOTE_ANNUAL.format(year=y) if p == 0
                 else TARGET_NOTE_QUARTER.format(q=QUARTER_NAMES[p - 1], year=y))
                for y, p in target_cols]
    _style_header(ws, headers)
    ws.freeze_panes = "C2"
    keys = [c.key for c in INDICATOR_COLS]
    _list_validation(ws, keys.index("unit") + 1, unit_range, "Kode bidang dari lembar Bidang.")
    for c in INDICATOR_COLS:
        if c.choices:
            _list_validation(ws, keys.index(c.key) + 1, _choices_formula(c.choices), c.note)
    first_target = len(INDICATOR_COLS) + 1
    for r, ind in enumerate(example.indicators if example else (), start=2):
        row = {
            "code": ind.code, "unit": ind.unit_code, "level": ind.level.value,
            "sasaran": ind.sasaran, "name": ind.name, "definition": ind.definition,
            "uom": ind.unit_of_measure, "polarity": POLARITY_LABEL[ind.polarity],
            "formula": (FORMULA_LABEL[ind.lower_formula]
                        if ind.polarity == Polarity.LOWER
                        or ind.lower_formula != LowerFormula.MIRROR else None),
            "value_type": VALUE_TYPE_LABEL[ind.value_type],
            "cumulative": YES if ind.cumulative else NO,
            "aggregation": AGGREGATION_LABEL.get(ind.aggregation or "", ""),
        }
        for idx, key in enumerate(keys, start=1):
            ws.cell(row=r, column=idx, value=row[key] if row[key] != "" else None)
        for t in ind.targets:
            if (t.year, t.period) not in target_cols:
                continue
            col = first_target + target_cols.index((t.year, t.period))
            if t.text is not None:
                ws.cell(row=r, column=col, value=t.text)
            elif t.value is not None:
                ws.cell(row=r, column=col, value=_excel_number(t.value))

    # Pengaturan
    ws = wb.create_sheet(SHEET_SETTINGS)
    _style_header(ws, [("Isian", 42, "Nama isian (jangan diubah)."),
                       ("Nilai", 30, "Isi nilainya di kolom ini; kosong: bawaan kabupaten."),
                       ("Keterangan", 90, "Penjelasan setiap isian.")])
    for r, col in enumerate(SETTINGS_ROWS, start=2):
        kind = SETTINGS_KEYS[col.key][2]
        ws.cell(row=r, column=1, value=col.header).font = HEADER_FONT
        cell = ws.cell(row=r, column=2, value=setting_values[col.key])
        if kind in ("text", "role", "yes_no"):
            cell.number_format = "@"
        note = col.note + _default_note(col.key, defaults)
        ws.cell(row=r, column=3, value=note).alignment = WRAP
        if col.choices:
            _list_validation(ws, 2, _choices_formula(col.choices), col.note,
                             first_row=r, last_row=r)

    # Penomoran
    ws = wb.create_sheet(SHEET_NUMBERING)
    _style_header(ws, [(c.header, c.width, c.note) for c in NUMBERING_COLS])
    dv = _list_validation(ws, 1, _choices_formula(KNOWN_DOCUMENT_TYPES), NUMBERING_COLS[0].note)
    dv.showErrorMessage = False  # a type of config.toml's may be written too
    for c in range(1, len(NUMBERING_COLS) + 1):
        ws.column_dimensions[get_column_letter(c)].number_format = "@"  # 050 stays 050
    types = (settings.get("numbering") or {}).get("types") or {}
    for r, (key, kind) in enumerate(types.items(), start=2):
        jenis = kind.get("jenis")
        row = [key, kind.get("nama"), kind.get("kode"),
               NONE_MARK if jenis == "" else jenis, kind.get("format")]
        for c, value in enumerate(row, start=1):
            ws.cell(row=r, column=c, value=value or None).number_format = "@"

    # Penerima
    ws = wb.create_sheet(SHEET_AGENCIES)
    _style_header(ws, [(c.header, c.width, c.note) for c in AGENCY_COLS])
    for r, agency in enumerate((settings.get("delivery") or {}).get("agencies") or (),
                               start=2):
        ws.cell(row=r, column=1, value=agency["key"])
        ws.cell(row=r, column=2, value=agency["name"])

    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


# ----------------------------------------------------------------- reading helpers


def _norm(text: Any) -> str:
    """Header/label/choice normal form: lower case, punctuation as spaces."""
    s = unicodedata.normalize("NFKC", str(text)).lower()
    s = re.sub(r"[^0-9a-z%/+\-]+", " ", s)
    s = s.replace("/", " ").strip()
    return " ".join(s.split())


def _norm_choice(text: str) -> str:
    s = unicodedata.normalize("NFKC", text).lower()
    return " ".join(s.replace("\u2212", "-").split())


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, _dt.datetime):
        return value.date().isoformat() if value.time() == _dt.time() else value.isoformat()
    return str(value)


def _as_text(value: Any) -> str:
    """A cell as text: numbers without a spurious ``.0``; blank is ``""``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, str):
        return " ".join(value.replace("\u00a0", " ").split()) if "\n" not in value \
            else value.strip()
    return _shown(value)


class _Formula:
    """Marks a formula cell whose result was never stored."""


_UNCALCULATED = _Formula()


@dataclass
class _Sheet:
    """One sheet as {(row, col): value}, plus the header map of a table sheet."""

    name: str
    cells: dict[tuple[int, int], Any]
    percent_cells: set[tuple[int, int]]
    max_row: int
    max_col: int

    def value(self, row: int, col: int) -> Any:
        return self.cells.get((row, col))

    def row_blank(self, row: int) -> bool:
        return all(
            (v := self.cells.get((row, c))) is None or (isinstance(v, str) and not v.strip())
            for c in range(1, self.max_col + 1)
        )


_MIN_WIDTH = 2  # the Kantor sheet: Isian, Nilai
_EMPTY_ID = {id(EMPTY_CELL)}
_FORMULA_TAGS = tuple(p + b"f" + e for p in (b"<", b":") for e in (b">", b" ", b"/",
                                                                      b"\t", b"\n", b"\r"))


def _has_formula(path: Path, part: str) -> bool:
    """Whether a worksheet part may hold a formula element (``<f>``, ``<f t=...>``,
    prefixed ``<x:f>``; not ``<formula1>`` of a drop-down), by streaming the bytes: no
    XML parsing. A false yes only costs the second pass."""
    with zipfile.ZipFile(path) as zf, zf.open(part) as src:
        tail = b""
        while chunk := src.read(1 << 20):
            buf = tail + chunk
            if any(needle in buf for needle in _FORMULA_TAGS):
                return True
            tail = buf[-2:]
    return False


def _sheet_cells(ws_v, ws_f, name: str) -> _Sheet:
    """One sheet read in openpyxl's read-only mode (rows streamed from the zip, never a
    full cell model in memory). ``ws_f``, the same sheet read with formulas, is only
    given when the sheet has a formula, and is then read in lockstep to find formulas
    without a stored result. Columns right of the header row's last cell are not read,
    so a stray cell in column XFD cannot make every row 16,384 cells wide."""
    ws_v.reset_dimensions()  # a <dimension> in the file may claim anything
    header = next(ws_v.iter_rows(min_row=1, max_row=1, values_only=True), ())
    width = max([i + 1 for i, v in enumerate(header) if v is not None] + [_MIN_WIDTH])
    empty = (EMPTY_CELL,) * width
    if ws_f is not None:
        ws_f.reset_dimensions()
        rows = zip(ws_v.iter_rows(max_col=width), ws_f.iter_rows(max_col=width))
    else:
        rows = ((row, empty) for row in ws_v.iter_rows(max_col=width))
    cells: dict[tuple[int, int], Any] = {}
    percent: set[tuple[int, int]] = set()
    max_row = max_col = 0
    for row_no, (row_v, row_f) in enumerate(rows, start=1):
        if set(map(id, row_v)) <= _EMPTY_ID >= set(map(id, row_f)):
            continue  # a missing row (the reader fills gaps with empty rows)
        for col_no, (cell, cell_f) in enumerate(zip(row_v, row_f), start=1):
            v = cell.value
            if v is None:
                f = cell_f.value
                if f is None or not (isinstance(f, str) and f.startswith("=")):
                    continue
                v = _UNCALCULATED
            elif isinstance(v, str) and not v.strip():
                continue
            cells[(row_no, col_no)] = v
            if isinstance(v, (int, float)) and "%" in (cell.number_format or ""):
                percent.add((row_no, col_no))
            max_row, max_col = max(max_row, row_no), max(max_col, col_no)
    return _Sheet(name, cells, percent, max_row, max_col)


def _unreadable(path: Path, exc: Exception) -> SetupWorkbookError:
    return SetupWorkbookError(
        f"Berkas {path.name} tidak dapat dibaca sebagai buku kerja Excel (.xlsx): "
        f"{type(exc).__name__}. Simpan ulang sebagai \"Excel Workbook (.xlsx)\".")


def _load(path: Path, limits: XlsxLimits | None = None) -> dict[str, _Sheet]:
    if not path.exists():
        raise SetupWorkbookError(f"Berkas {path} tidak ditemukan.")
    if not zipfile.is_zipfile(path):
        raise SetupWorkbookError(
            f"Berkas {path.name} bukan buku kerja Excel (.xlsx). Simpan berkas dengan "
            "format \"Excel Workbook (.xlsx)\" lalu impor ulang.")
    if limits is not None:
        check_xlsx(path, limits)  # XlsxTooLarge before openpyxl sees the file
    try:
        values_wb = load_workbook(path, data_only=True, read_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not an xlsx"
        raise _unreadable(path, exc) from exc
    formulas_wb = None  # opened only when a sheet has a formula (a second full parse)
    try:
        by_norm = {_norm(name): name for name in values_wb.sheetnames}
        missing = [s for s in REQUIRED_SHEETS if _norm(s) not in by_norm]
        if missing:
            raise SetupWorkbookError(
                f"Berkas {path.name} tidak memiliki lembar {', '.join(missing)}. Gunakan buku "
                "kerja isian dari perintah \"sopbot setup template\".")
        sheets: dict[str, _Sheet] = {}
        for wanted in REQUIRED_SHEETS + OPTIONAL_SHEETS:
            actual = by_norm.get(_norm(wanted))
            if actual is None:  # an optional sheet left out: the regency's settings
                continue
            ws_v = values_wb[actual]
            if not isinstance(ws_v, ReadOnlyWorksheet):
                raise SetupWorkbookError(f"Lembar {wanted} bukan lembar kerja biasa.")
            try:
                ws_f = None
                if _has_formula(path, ws_v._worksheet_path):
                    if formulas_wb is None:
                        formulas_wb = load_workbook(path, data_only=False, read_only=True)
                    ws_f = formulas_wb[actual]
                sheets[wanted] = _sheet_cells(ws_v, ws_f, wanted)
            except SetupWorkbookError:
                raise
            except Exception as exc:  # noqa: BLE001 - a damaged sheet part
                raise SetupWorkbookError(
                    f"Lembar {wanted} pada berkas {path.name} tidak dapat dibaca: "
                    f"{type(exc).__name__}. Simpan ulang sebagai \"Excel Workbook (.xlsx)\".") \
                    from exc
        return sheets
    finally:
        values_wb.close()
        if formulas_wb is not None:
            formulas_wb.close()


class _Errors(list):
    def add(self, sheet: str, row: int | None, column: str | None, message: str) -> None:
        self.append(SetupError(sheet, row, column, message))


@dataclass
class _Table:
    """A table sheet: its header map, its non-blank data rows and error collection."""

    sheet: _Sheet
    cols: dict[str, int]  # key -> column index
    headers: dict[str, str]  # key -> header text for messages
    errors: _Errors

    def rows(self) -> list[int]:
        rows = sorted({r for (r, _c) in self.sheet.cells if r >= 2})
        return [r for r in rows if not self.sheet.row_blank(r)]

    def raw(self, row: int, key: str) -> Any:
        col = self.cols.get(key)
        return None if col is None else self.sheet.value(row, col)

    def err(self, row: int | None, key_or_header: str | None, message: str) -> None:
        column = self.headers.get(key_or_header, key_or_header) if key_or_header else None
        self.errors.add(self.sheet.name, row, column, message)

    def text(self, row: int, key: str, col_def: Col | None = None) -> str | None:
        """The cell as text; None (with an error recorded) when it cannot be used."""
        v = self.raw(row, key)
        if v is _UNCALCULATED:
            self.err(row, key, "Sel berisi rumus yang belum dihitung. Buka dan simpan berkas "
                               "di Excel, atau tulis nilainya langsung.")
            return None
        s = _as_text(v)
        if col_def is not None:
            if col_def.required and not s and key in self.cols:
                self.err(row, key, f"{col_def.header} wajib diisi.")
                return None
            if col_def.max_len and len(s) > col_def.max_len:
                self.err(row, key, f"Terlalu panjang ({len(s)} karakter, paling banyak "
                                   f"{col_def.max_len}).")
                return None
        return s


def _table(sheet: _Sheet, cols: tuple[Col, ...], errors: _Errors,
           extra: Callable[[int, str], bool] | None = None) -> _Table:
    found: dict[str, int] = {}
    lookup: dict[str, str] = {}
    for c in cols:
        for name in (c.header, *c.aliases):
            lookup.setdefault(_norm(name), c.key)
    for col in range(1, sheet.max_col + 1):
        v = sheet.value(1, col)
        if v is None or v is _UNCALCULATED:
            continue
        text = _as_text(v)
        key = lookup.get(_norm(text))
        if key is not None:
            if key in found:
                errors.add(sheet.name, 1, text, "Judul kolom ini muncul dua kali.")
            else:
                found[key] = col
        elif extra is not None:
            extra(col, text)
    headers = {c.key: c.header for c in cols}
    for c in cols:  # the template writes every column: a missing one was deleted
        if c.key not in found:
            errors.add(sheet.name, 1, c.header,
                       f"Kolom \"{c.header}\" tidak ditemukan di baris judul (baris 1)."
                       + ("" if c.required else " Jangan hapus kolom; kosongkan isinya bila "
                          "tidak perlu, atau buat buku kerja baru dengan 'sopbot setup "
                          "template'."))
    return _Table(sheet, found, headers, errors)


def _choice(table: _Table, row: int, col_def: Col, words: dict[str, Any],
            default: Any = None) -> Any:
    """Look a drop-down value up; records an error and returns None when unknown."""
    s = table.text(row, col_def.key, col_def)
    if s is None:
        return None
    if not s:
        return default
    key = _norm_choice(s)
    if key in words:
        return words[key]
    table.err(row, col_def.key, f"\"{s}\" tidak dikenal. Pilihan: {', '.join(col_def.choices)}.")
    return None


_YES_NO = {**{w: True for w in _YES_WORDS}, **{w: False for w in _NO_WORDS}}


def _col(cols: tuple[Col, ...], key: str) -> Col:
    return next(c for c in cols if c.key == key)


# ----------------------------------------------------------------- the sheets


def _pairs(sheet: _Sheet, rows: tuple[Col, ...], errors: _Errors
           ) -> list[tuple[Col, int, Any]]:
    """The (row definition, row number, value cell) of a key/value sheet (Kantor,
    Pengaturan): the label in column A found by its text (longest label first), the
    value in column B. A label written twice is refused; unknown labels are skipped."""
    lookup: list[tuple[str, Col]] = []
    for c in rows:
        lookup += [(_norm(a), c) for a in (c.header, *c.aliases)]
    lookup.sort(key=lambda pair: -len(pair[0]))  # longest label first
    seen: dict[str, int] = {}
    out: list[tuple[Col, int, Any]] = []
    for row in range(1, sheet.max_row + 1):
        label = sheet.value(row, 1)
        if label is None or label is _UNCALCULATED:
            continue
        norm = _norm(label)
        if norm in ("isian", "") and row == 1:
            continue
        col = next((c for name, c in lookup if norm == name or norm.startswith(name + " ")),
                   None)
        if col is None:
            continue
        if col.key in seen:
            errors.add(sheet.name, row, "Isian",
                       f"\"{col.header}\" sudah diisi di baris {seen[col.key]}.")
            continue
        seen[col.key] = row
        raw = sheet.value(row, 2)
        if raw is _UNCALCULATED:
            errors.add(sheet.name, row, "Nilai", "Sel berisi rumus yang belum dihitung.")
            continue
        out.append((col, row, raw))
    return out


def _format_problem(text: str) -> str | None:
    """Why a letter number format cannot be used (Indonesian), or None."""
    if "{urut}" not in text:
        return "Format nomor harus memuat {urut} (nomor urut dari buku agenda)."
    try:
        text.format(**NUMBER_FIELDS)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        detail = f"bagian {{{exc.args[0]}}} tidak dikenal" if isinstance(exc, KeyError) \
            else "kurung kurawal tidak berpasangan"
        return (f"Format nomor \"{text}\" tidak sah ({detail}). Tersedia: "
                + " ".join(f"{{{k}}}" for k in NUMBER_FIELDS) + ".")
    return None


def _read_office(sheet: _Sheet, errors: _Errors,
                 places: dict[str, tuple[str, int | None, str | None]] | None = None
                 ) -> dict[str, Any]:
    places = {} if places is None else places
    seen: dict[str, int] = {}
    out: dict[str, Any] = {}
    for col, row, raw in _pairs(sheet, OFFICE_ROWS, errors):
        seen[col.key] = row
        if col.key in ("office_start", "office_end"):
            raw = _clock_text(raw)
        value = _as_text(raw)
        if col.key == "example":
            if value and _norm_choice(value) not in _YES_NO:
                errors.add(sheet.name, row, "Nilai",
                           f"\"{value}\" tidak dikenal. Pilihan: {YES}, {NO}.")
                continue
            out["example"] = _YES_NO.get(_norm_choice(value), False) if value else False
            continue
        if col.key in SETTING_ROWS:
            if not value:
                continue  # the regency's value
            if col.max_len and len(value) > col.max_len:
                errors.add(sheet.name, row, "Nilai", f"Terlalu panjang ({len(value)} karakter, "
                                                     f"paling banyak {col.max_len}).")
                continue
            if col.key == "number_format" and (problem := _format_problem(value)):
                errors.add(sheet.name, row, "Nilai", problem)
                continue
            if col.key == "timezone":
                value = ZONES.get(value.strip().casefold(), value.strip())
                if not _known_zone(value):
                    errors.add(sheet.name, row, "Nilai", f"Zona waktu \"{value}\" tidak "
                                                         "dikenal. Tulis WIB, WITA atau WIT.")
                    continue
            elif col.key == "number_jenis" and value == NONE_MARK:
                value = ""
            out[col.key] = value
            places[".".join(SETTING_ROWS[col.key])] = (sheet.name, row, "Nilai")
            continue
        if not value:
            errors.add(sheet.name, row, "Nilai", f"{col.header} wajib diisi.")
            continue
        if col.max_len and len(value) > col.max_len:
            errors.add(sheet.name, row, "Nilai",
                       f"Terlalu panjang ({len(value)} karakter, paling banyak {col.max_len}).")
            continue
        out[col.key] = value
    for c in OFFICE_ROWS:
        if c.required and c.key not in seen:
            errors.add(sheet.name, None, "Isian",
                       f"Baris \"{c.header}\" tidak ditemukan; tambahkan baris dengan isian "
                       f"\"{c.header}\" dan nilainya di kolom Nilai.")
    return out


def _clock_text(raw: Any) -> Any:
    """An office hour as "HH:MM" when written as Excel time (07:30 typed), in the
    Indonesian way with a dot ("07.30", or the number 7.3 Excel made of it) or as a
    whole hour (16); anything else as it is (refused by config.toml's rule)."""
    if isinstance(raw, (_dt.time, _dt.datetime)):
        return raw.strftime("%H:%M")
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and 0 <= raw < 24:
        hours = int(raw)
        minutes = round((raw - hours) * 100)
        return f"{hours:02d}:{minutes:02d}" if minutes < 60 else raw
    if isinstance(raw, str) and (m := re.fullmatch(r"\s*(\d{1,2})[.:](\d{2})\s*", raw)):
        return f"{int(m.group(1)):02d}:{m.group(2)}"
    return raw


def _known_zone(name: str) -> bool:
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except (ValueError, LookupError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True


def _setting_value(sheet: _Sheet, row: int, col: Col, kind: str, raw: Any,
                   errors: _Errors) -> tuple[bool, Any]:
    """(ok, value) of one Pengaturan row; an error is recorded when not ok. Value None
    (with ok) is an empty row: the regency's value."""
    def bad(message: str) -> tuple[bool, Any]:
        errors.add(sheet.name, row, "Nilai", message)
        return False, None

    text = _as_text(raw)
    if not text:
        return True, None
    if col.max_len and len(text) > col.max_len:
        return bad(f"Terlalu panjang ({len(text)} karakter, paling banyak {col.max_len}).")
    if kind == "text":
        return True, text
    if kind == "yes_no":
        word = _norm_choice(text)
        if word not in _YES_NO:
            return bad(f"\"{text}\" tidak dikenal. Pilihan: {YES}, {NO}.")
        return True, _YES_NO[word]
    if kind == "role":
        word = _norm_choice(text)
        if word not in ESCALATION_CHOICES:
            return bad(f"\"{text}\" tidak dikenal. Pilihan: {', '.join(ESCALATION_CHOICES)}.")
        return True, word
    if isinstance(raw, bool) or isinstance(raw, (_dt.date, _dt.time, _dt.timedelta)):
        return bad(f"Harus angka, tetapi sel berisi {_shown(raw)}.")
    if isinstance(raw, (int, float)):
        number = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
        if kind == "percent" and (row, 2) in sheet.percent_cells:
            number *= 100
    else:
        try:
            number = parse_number(text).value
        except NumberParseError as exc:
            return bad(exc.message)
    if kind == "percent":
        if not 0 < number < 100:
            return bad(f"Harus persen di atas 0 dan di bawah 100, misalnya 50 untuk separuh "
                       f"waktu (tertulis {text}).")
        if number < 1:
            return bad(f"Tulis dalam persen, misalnya 50 untuk separuh waktu (tertulis {text}"
                       "; persen di bawah 1 tidak wajar).")
        return True, float(number) / 100
    if number != number.to_integral_value():
        return bad(f"Harus bilangan bulat (tertulis {text}).")
    least = 0 if kind == "count" else 1
    if not least <= number <= 365:
        return bad(f"Harus bilangan bulat {least} sampai 365 (tertulis {text}).")
    return True, int(number)


def _read_settings_sheet(sheet: _Sheet, errors: _Errors, settings: dict[str, Any],
                         places: dict[str, tuple[str, int | None, str | None]]) -> None:
    """The Pengaturan rows into ``settings``; an escalation row gives ``None`` for
    "tidak ada" (completed with the regency's chain on import)."""
    for col, row, raw in _pairs(sheet, SETTINGS_ROWS, errors):
        section, key, kind = SETTINGS_KEYS[col.key]
        ok, value = _setting_value(sheet, row, col, kind, raw, errors)
        if not ok or value is None:
            continue
        if kind == "role":
            role = col.key.removeprefix("escalation_")
            if value == role:
                errors.add(sheet.name, row, "Nilai", f"Langkah {role} tidak dapat dieskalasi "
                                                     f"kepada {role} sendiri.")
                continue
            chain = settings.setdefault(section, {}).setdefault(key, {})
            chain[role] = None if value == NO_ESCALATION else value
            places[f"{section}.{key}.{role}"] = (sheet.name, row, "Nilai")
            continue
        settings.setdefault(section, {})[key] = value
        places[f"{section}.{key}"] = (sheet.name, row, "Nilai")


_TYPE_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _read_numbering(sheet: _Sheet, errors: _Errors, settings: dict[str, Any],
                    places: dict[str, tuple[str, int | None, str | None]]) -> None:
    """The Penomoran rows: ``numbering.types`` with the cells filled in (an empty cell
    keeps the regency's value of that type, completed on import)."""
    t = _table(sheet, NUMBERING_COLS, errors)
    types: dict[str, dict[str, str]] = {}
    seen: dict[str, int] = {}
    C = lambda key: _col(NUMBERING_COLS, key)  # noqa: E731
    for row in t.rows():
        written = t.text(row, "key", C("key"))
        values = {k: t.text(row, k, C(k)) for k in ("nama", "kode", "jenis", "format")}
        if not written or None in values.values():
            continue
        key = re.sub(r"[\s\-]+", "_", written.strip().casefold())
        if not _TYPE_KEY.fullmatch(key):
            t.err(row, "key", f"\"{written}\" bukan kunci jenis dokumen: huruf kecil, angka "
                              "dan garis bawah, diawali huruf, misalnya pengukuran_kinerja.")
            continue
        if key in seen:
            t.err(row, "key", f"Jenis dokumen {key} sudah ditulis di baris {seen[key]}.")
            continue
        seen[key] = row
        if values["format"] and (problem := _format_problem(values["format"])):
            t.err(row, "format", problem)
            continue
        if values["jenis"] == NONE_MARK:
            values["jenis"] = ""
        elif values["jenis"] == "":
            del values["jenis"]
        types[key] = {k: v for k, v in values.items() if v or k == "jenis"}
        places[f"numbering.types.{key}"] = (sheet.name, row, None)
    if types:
        settings.setdefault("numbering", {})["types"] = types


def _read_agencies(sheet: _Sheet, errors: _Errors, settings: dict[str, Any],
                   places: dict[str, tuple[str, int | None, str | None]]
                   ) -> dict[str, str] | None:
    """The Penerima rows: ``delivery.agencies``, replacing the regency's list; the codes
    (casefolded -> as written) for the Pegawai sheet, None when the sheet has no row."""
    t = _table(sheet, AGENCY_COLS, errors)
    agencies: list[dict[str, str]] = []
    keys: dict[str, str] = {}
    seen: dict[str, int] = {}
    for row in t.rows():
        key = t.text(row, "key", _col(AGENCY_COLS, "key"))
        name = t.text(row, "name", _col(AGENCY_COLS, "name"))
        if key and key.casefold() in seen:
            t.err(row, "key", f"Kode OPD \"{key}\" sudah dipakai di baris "
                              f"{seen[key.casefold()]}.")
            continue
        if key:
            seen[key.casefold()] = row
            keys[key.casefold()] = key
        if key and name:
            agencies.append({"key": key, "name": name})
    if not seen:
        return None
    if agencies:
        settings.setdefault("delivery", {})["agencies"] = agencies
        places["delivery.agencies"] = (sheet.name, None, None)
    return keys


@dataclass
class _UnitRow:
    row: int
    spec: UnitSpec


def _read_units(sheet: _Sheet, errors: _Errors) -> tuple[list[_UnitRow], set[str]]:
    """The accepted units, and every code written on the sheet (casefolded)."""
    t = _table(sheet, UNIT_COLS, errors)
    units: list[_UnitRow] = []
    seen: dict[str, int] = {}
    for row in t.rows():
        code = t.text(row, "code", _col(UNIT_COLS, "code"))
        name = t.text(row, "name", _col(UNIT_COLS, "name"))
        secretariat = _choice(t, row, _col(UNIT_COLS, "secretariat"), _YES_NO, False)
        if code and code.casefold() in seen:
            t.err(row, "code", f"Kode bidang \"{code}\" sudah dipakai di baris "
                               f"{seen[code.casefold()]}.")
            continue
        if code:
            seen[code.casefold()] = row
        if code and name and secretariat is not None:
            units.append(_UnitRow(row, UnitSpec(code, name, secretariat)))
    return units, set(seen)


def _resolve_unit(t: _Table, row: int, key: str, units: dict[str, str],
                  written: set[str]) -> tuple[bool, str | None]:
    """(ok, canonical code or None when blank). A code written on the Bidang sheet but
    refused there is not reported again."""
    s = t.text(row, key, None)
    if s is None:
        return False, None
    if not s:
        return True, None
    code = units.get(s.casefold())
    if code is None:
        if s.casefold() not in written:
            t.err(row, key, f"Kode bidang \"{s}\" tidak ada di lembar {SHEET_UNITS}.")
        return False, None
    return True, code


def _read_nip(t: _Table, row: int) -> tuple[bool, str | None]:
    v = t.raw(row, "nip")
    if v is None:
        return True, None
    if v is _UNCALCULATED:
        t.text(row, "nip")
        return False, None
    if isinstance(v, bool):
        t.err(row, "nip", f"NIP harus {NIP_LENGTH} angka (tertulis '{v}')")
        return False, None
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 2**53:
            v = int(v)
        else:
            t.err(row, "nip", f"NIP tertulis sebagai angka ({v!r}) sehingga angka terakhirnya "
                              "sudah dibulatkan Excel. Format kolom NIP sebagai Teks lalu "
                              "ketik ulang NIP-nya.")
            return False, None
    if isinstance(v, int):
        nip = str(v)
    elif isinstance(v, str):
        nip = re.sub(r"[\s.\-]", "", unicodedata.normalize("NFKC", v)).lstrip("'")
    else:
        t.err(row, "nip", f"NIP harus {NIP_LENGTH} angka (tertulis '{_shown(v)}')")
        return False, None
    if not nip:
        return True, None
    if not (nip.isascii() and nip.isdigit() and len(nip) == NIP_LENGTH):
        t.err(row, "nip", f"NIP harus {NIP_LENGTH} angka (tertulis '{_as_text(v)}')")
        return False, None
    return True, nip


@dataclass
class _PersonRow:
    row: int
    spec: PersonSpec


def _read_people(sheet: _Sheet, errors: _Errors, units: dict[str, str],
                 written: set[str], agencies: dict[str, str] | None = None
                 ) -> tuple[list[_PersonRow], list[tuple[int, Role, str | None]]]:
    """The accepted people, and (row, role, unit) of every row whose role is known."""
    t = _table(sheet, PEOPLE_COLS, errors)
    people: list[_PersonRow] = []
    nips: dict[str, int] = {}
    roles: list[tuple[int, Role, str | None]] = []
    for row in t.rows():
        name = t.text(row, "name", _col(PEOPLE_COLS, "name"))
        role = _choice(t, row, _col(PEOPLE_COLS, "role"), _ROLE_WORDS)
        nip_ok, nip = _read_nip(t, row)
        unit_ok, unit = _resolve_unit(t, row, "unit", units, written)
        if role is not None:
            roles.append((row, role, unit))
        rank = t.text(row, "rank", _col(PEOPLE_COLS, "rank"))
        position = t.text(row, "position", _col(PEOPLE_COLS, "position"))
        agency = t.text(row, "agency", _col(PEOPLE_COLS, "agency"))
        ok = bool(name) and role is not None and nip_ok and unit_ok and None not in (
            rank, position, agency)
        if nip:
            if nip in nips:
                t.err(row, "nip", f"NIP {nip} sudah dipakai di baris {nips[nip]}.")
                ok = False
            else:
                nips[nip] = row
        if role is not None:
            if role in ROLES_NEEDING_NIP and nip_ok and nip is None:
                t.err(row, "nip", f"NIP wajib diisi untuk peran {role.value}.")
                ok = False
            if role in ROLES_NEEDING_UNIT and unit_ok and unit is None:
                t.err(row, "unit", f"Kode bidang wajib diisi untuk peran {role.value}.")
                ok = False
            if role == Role.CONTACT and agency == "":
                t.err(row, "agency", "Kode OPD wajib diisi untuk peran kontak.")
                ok = False
            if role != Role.CONTACT and agency:
                t.err(row, "agency", "Kode OPD hanya diisi untuk peran kontak; kosongkan "
                                     "atau ubah perannya menjadi kontak.")
                ok = False
            elif agency and agencies is not None:  # the Penerima sheet's spelling
                if agency.casefold() in agencies:
                    agency = agencies[agency.casefold()]
                else:
                    t.err(row, "agency", f"Kode OPD \"{agency}\" tidak ada di lembar "
                                         f"{SHEET_AGENCIES}.")
                    ok = False
        if ok:
            people.append(_PersonRow(row, PersonSpec(
                name=name, role=role, nip=nip, unit_code=unit, rank=rank or "",
                position=position or "", agency_key=agency or None)))
    return people, roles


def _count_roles(sheet: _Sheet, roles: list[tuple[int, Role, str | None]], errors: _Errors,
                 header: str) -> None:
    for role, title in ((Role.KADIS, "Kepala Dinas"), (Role.SEKRETARIS, "Sekretaris")):
        found = [r for r, rl, _u in roles if rl == role]
        if not found:
            errors.add(sheet.name, None, header,
                       f"Belum ada pegawai dengan peran {role.value} ({title}); harus ada "
                       "tepat satu.")
        for extra in found[1:]:
            errors.add(sheet.name, extra, header,
                       f"Peran {role.value} sudah diberikan di baris {found[0]}; harus tepat "
                       "satu.")
    if not any(rl == Role.KASUBAG for _r, rl, _u in roles):
        errors.add(sheet.name, None, header,
                   "Belum ada pegawai dengan peran kasubag (Kasubag Perencanaan); harus ada "
                   "sekurang-kurangnya satu.")


def _target_value(t: _Table, row: int, col: int, header: str, value_type: ValueType
                  ) -> tuple[bool, Decimal | None, str | None]:
    v = t.sheet.value(row, col)
    if v is None:
        return True, None, None
    if v is _UNCALCULATED:
        t.err(row, header, "Sel berisi rumus yang belum dihitung. Buka dan simpan berkas di "
                           "Excel, atau tulis nilainya langsung.")
        return False, None, None
    if value_type == ValueType.TEXT:
        text = _as_text(v)
        if len(text) > 200:
            t.err(row, header, "Target teks terlalu panjang (paling banyak 200 karakter).")
            return False, None, None
        return True, None, text
    if isinstance(v, bool) or isinstance(v, (_dt.date, _dt.time, _dt.timedelta)):
        t.err(row, header, f"Target harus angka, tetapi sel berisi "
                           f"{'tanggal' if not isinstance(v, bool) else 'nilai benar/salah'} "
                           f"({_shown(v)}). Format sel sebagai Teks atau Angka lalu ketik "
                           "ulang, misalnya 4,10.")
        return False, None, None
    if isinstance(v, (int, float)):
        try:
            d = Decimal(v) if isinstance(v, int) else (
                Decimal(int(v)) if v.is_integer() else Decimal(repr(v)))
        except (InvalidOperation, ValueError, OverflowError):
            t.err(row, header, f"Target \"{v!r}\" bukan angka yang sah.")
            return False, None, None
        if (row, col) in t.sheet.percent_cells:
            d = d * 100
            d = d.quantize(Decimal(1)) if d == d.to_integral_value() else d.normalize()
        return True, d, None
    try:
        return True, parse_number(_as_text(v)).value, None
    except NumberParseError as exc:
        t.err(row, header, exc.message)
        return False, None, None


def _read_indicators(sheet: _Sheet, errors: _Errors, units: dict[str, str], written: set[str]
                     ) -> tuple[list[IndicatorSpec], set[str]]:
    """The indicators, and the bidang codes that some indicator row names."""
    target_cols: list[tuple[int, str, int, int]] = []  # (col, header, year, period)

    def extra(col: int, header: str) -> bool:
        parsed = _parse_target_header(header)
        if parsed is None:
            if _norm(header).startswith("target"):
                errors.add(sheet.name, 1, header,
                           f"Judul kolom \"{header}\" tidak dikenali. Gunakan pola "
                           "\"Target 2025\" atau \"Target TW I 2025\" ... \"Target TW IV 2025\".")
            return False
        for _c, other, y, p in target_cols:
            if (y, p) == parsed:
                errors.add(sheet.name, 1, header, f"Kolom target ini sama dengan \"{other}\".")
                return False
        if not 2000 <= parsed[0] <= 2100:
            errors.add(sheet.name, 1, header, f"Tahun {parsed[0]} tidak wajar.")
            return False
        target_cols.append((col, header, *parsed))
        return True

    t = _table(sheet, INDICATOR_COLS, errors, extra)
    target_cols.sort(key=lambda c: (c[2], c[3]))
    out: list[IndicatorSpec] = []
    codes: dict[str, int] = {}
    used_units: set[str] = set()
    C = lambda key: _col(INDICATOR_COLS, key)  # noqa: E731
    for row in t.rows():
        code = t.text(row, "code", C("code"))
        unit_ok, unit = _resolve_unit(t, row, "unit", units, written)
        if unit_ok and unit is None and "unit" in t.cols:
            t.err(row, "unit", "Kode Bidang wajib diisi.")
            unit_ok = False
        if unit:
            used_units.add(unit)
        level = _choice(t, row, C("level"), {v: IndicatorLevel(v) for v in LEVEL_CHOICES})
        sasaran = t.text(row, "sasaran", C("sasaran"))
        name = t.text(row, "name", C("name"))
        definition = t.text(row, "definition", C("definition"))
        uom = t.text(row, "uom", C("uom"))
        polarity = _choice(t, row, C("polarity"), _POLARITY_WORDS)
        formula = _choice(t, row, C("formula"), _FORMULA_WORDS, LowerFormula.MIRROR)
        value_type = _choice(t, row, C("value_type"), _VALUE_TYPE_WORDS)
        cumulative = _choice(t, row, C("cumulative"), _YES_NO, False)
        aggregation = _choice(t, row, C("aggregation"), _AGGREGATION_WORDS, "")
        ok = bool(code) and unit_ok and bool(name) and None not in (
            level, sasaran, definition, uom, polarity, formula, value_type, cumulative)
        if code:
            if code.casefold() in codes:
                t.err(row, "code", f"Kode indikator \"{code}\" sudah dipakai di baris "
                                   f"{codes[code.casefold()]}.")
                ok = False
            else:
                codes[code.casefold()] = row
        targets: list[TargetSpec] = []
        if value_type is not None:
            for col, header, year, period in target_cols:
                t_ok, value, text = _target_value(t, row, col, header, value_type)
                ok = ok and t_ok
                if t_ok and (value is not None or text):
                    targets.append(TargetSpec(year, period, value, text or None))
        if ok:
            out.append(IndicatorSpec(
                code=code, unit_code=unit, name=name, level=level, sasaran=sasaran,
                definition=definition, unit_of_measure=uom, polarity=polarity,
                lower_formula=formula, value_type=value_type, cumulative=cumulative,
                aggregation=aggregation or None, targets=tuple(targets)))
    return out, used_units


# ----------------------------------------------------------------- public entry points


class SetupTooManyRows(SetupWorkbookError):
    """A table sheet has more data rows than ``[uploads] max_setup_rows``."""

    def __init__(self, sheet: str, rows: int, limit: int) -> None:
        super().__init__(f"Lembar {sheet} berisi {rows} baris data, paling banyak {limit} "
                         "baris ([uploads] max_setup_rows). Tidak ada yang disimpan.")
        self.sheet, self.rows, self.limit = sheet, rows, limit


def read_setup(path: Path | str, *, limits: XlsxLimits | None = None,
               max_rows: int | None = None) -> SetupResult:
    """Read and check a filled set-up workbook; every problem is collected.

    Raises :class:`SetupWorkbookError` only when the file is not an xlsx or lacks one of
    the sheets Kantor, Bidang, Pegawai, Indikator; :class:`SetupTooManyRows` when a
    sheet has more than ``max_rows`` data rows, and
    :class:`reports.xlsx_limits.XlsxTooLarge` when the file is over ``limits`` (checked
    before the workbook is opened).
    """
    path = Path(path)
    sheets = _load(path, limits)
    if max_rows is not None:
        for name in (SHEET_UNITS, SHEET_PEOPLE, SHEET_INDICATORS, SHEET_NUMBERING,
                     SHEET_AGENCIES):
            if name not in sheets:
                continue
            rows = len({r for (r, _c) in sheets[name].cells if r >= 2})
            if rows > max_rows:
                raise SetupTooManyRows(name, rows, max_rows)
    errors = _Errors()
    places: dict[str, tuple[str, int | None, str | None]] = {}
    office = _read_office(sheets[SHEET_OFFICE], errors, places)
    settings = _settings(office)
    if SHEET_SETTINGS in sheets:
        _read_settings_sheet(sheets[SHEET_SETTINGS], errors, settings, places)
    if SHEET_NUMBERING in sheets:
        _read_numbering(sheets[SHEET_NUMBERING], errors, settings, places)
    agency_keys: dict[str, str] | None = None
    if SHEET_AGENCIES in sheets:
        agency_keys = _read_agencies(sheets[SHEET_AGENCIES], errors, settings, places)

    unit_rows, written = _read_units(sheets[SHEET_UNITS], errors)
    units = {u.spec.code.casefold(): u.spec.code for u in unit_rows}

    people, roles = _read_people(sheets[SHEET_PEOPLE], errors, units, written, agency_keys)
    _count_roles(sheets[SHEET_PEOPLE], roles, errors, _col(PEOPLE_COLS, "role").header)

    indicators, used_units = _read_indicators(sheets[SHEET_INDICATORS], errors, units,
                                              written)

    # every bidang (other than the secretariat) with indicators needs a kabid
    with_kabid = {unit for _r, role, unit in roles if role == Role.KABID}
    for u in unit_rows:
        if not u.spec.is_secretariat and u.spec.code in used_units \
                and u.spec.code not in with_kabid:
            errors.add(SHEET_UNITS, u.row, _col(UNIT_COLS, "code").header,
                       f"Bidang {u.spec.code} memiliki indikator tetapi belum ada pegawai "
                       f"dengan peran kabid di bidang ini (lembar {SHEET_PEOPLE}).")

    if errors:
        return SetupResult(None, list(errors), places)
    spec = OfficeSpec(
        name=office["name"], regency=office["regency"], place=office["place"],
        unit_code=office["unit_code"],
        units=tuple(u.spec for u in unit_rows),
        people=tuple(p.spec for p in people),
        indicators=tuple(indicators),
        example_data=office.get("example", False),
        settings=settings,
    )
    return SetupResult(spec, [], places)


def _settings(office: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The office's own settings from the Kantor rows that are filled in (checked against
    config.toml's rules on import, ``bot.core.office_setup``)."""
    out: dict[str, dict[str, Any]] = {}
    for key, (section, name) in SETTING_ROWS.items():
        if key in office:
            out.setdefault(section, {})[name] = office[key]
    return out
