"""EXAMPLE DATA (data contoh) for the demo and the tests.

An office shaped like the Dinas Tenaga Kerja dan Perindustrian of Kabupaten Lampung
Barat, with its four units and realistic indicators of a manpower and industry office.
The people, NIPs and figures are invented; every document made from them is marked
"DATA CONTOH".
"""
from __future__ import annotations

from decimal import Decimal

from bot.core.office_data import IndicatorSpec, OfficeSpec, PersonSpec, TargetSpec, UnitSpec
from models.enums import IndicatorLevel as L
from models.enums import LowerFormula, Polarity, Role, ValueType

SEK, PPTK, HIJS, IND = "SEK", "PPTK", "HIJS", "IND"


def _targets(year: int, annual, quarters=None, text: bool = False) -> tuple[TargetSpec, ...]:
    def spec(period, v):
        if text:
            return TargetSpec(year, period, None, v)
        return TargetSpec(year, period, Decimal(str(v)))

    q = quarters if quarters is not None else [annual] * 4
    return (spec(0, annual), *(spec(i + 1, v) for i, v in enumerate(q)))


def example_office(year: int) -> OfficeSpec:
    units = (
        UnitSpec(SEK, "Sekretariat", is_secretariat=True),
        UnitSpec(PPTK, "Bidang Pelatihan dan Penempatan Tenaga Kerja"),
        UnitSpec(HIJS, "Bidang Hubungan Industrial dan Jaminan Sosial Tenaga Kerja"),
        UnitSpec(IND, "Bidang Perindustrian"),
    )
    people = (
        PersonSpec("Drs. Contoh Kepala Dinas, M.M.", Role.KADIS, "196601011990031001", None,
                   "Pembina Utama Muda", "Kepala Dinas"),
        PersonSpec("Contoh Sekretaris, S.E., M.M.", Role.SEKRETARIS, "197002021995031002", SEK,
                   "Pembina Tk. I", "Sekretaris"),
        PersonSpec("Contoh Kasubag Perencanaan, S.T.", Role.KASUBAG, "198003032005012003", SEK,
                   "Penata Tk. I", "Kasubag Perencanaan dan Keuangan"),
        PersonSpec("Contoh Kasubag Umum, S.Sos.", Role.KABID, "198104042006042004", SEK,
                   "Penata Tk. I", "Kasubag Umum dan Kepegawaian"),
        PersonSpec("Contoh Kabid Pelatihan, S.Pd.", Role.KABID, "197505052000031005", PPTK,
                   "Pembina", "Kepala Bidang Pelatihan dan Penempatan Tenaga Kerja"),
        PersonSpec("Contoh Kabid Hubungan Industrial, S.H.", Role.KABID, "197606062001121006",
                   HIJS, "Pembina", "Kepala Bidang Hubungan Industrial dan Jamsos"),
        PersonSpec("Contoh Kabid Perindustrian, S.T., M.T.", Role.KABID, "197707072002121007",
                   IND, "Pembina", "Kepala Bidang Perindustrian"),
        PersonSpec("Contoh Staf Sekretariat", Role.STAF, "199001012015031008", SEK,
                   "Penata Muda", "Pengadministrasi Umum"),
        PersonSpec("Contoh Staf Pelatihan", Role.STAF, "199102022019032009", PPTK,
                   "Penata Muda", "Analis Pasar Kerja"),
        PersonSpec("Contoh Staf Hubungan Industrial", Role.STAF, "199203032019031010", HIJS,
                   "Penata Muda", "Mediator Hubungan Industrial Ahli Pertama"),
        PersonSpec("Contoh Staf Perindustrian", Role.STAF, "199304042020122011", IND,
                   "Penata Muda", "Pembina Industri Ahli Pertama"),
        PersonSpec("Contoh Petugas Bappeda", Role.CONTACT, None, None, "", "Bappeda",
                   agency_key="bappeda"),
    )
    s1 = "Meningkatnya tata kelola pemerintahan yang akuntabel"
    s2 = "Meningkatnya kompetensi dan penempatan tenaga kerja"
    s3 = "Terciptanya hubungan industrial yang harmonis dan perlindungan pekerja"
    s4 = "Meningkatnya daya saing industri kecil dan menengah"
    I = IndicatorSpec  # noqa: E741
    indicators = (
        I("SEK-01", SEK, "Predikat SAKIP Dinas", L.SASARAN, s1,
          "Predikat hasil evaluasi SAKIP oleh Inspektorat (AA, A, BB, B, CC, C, D)", "predikat",
          value_type=ValueType.TEXT, targets=_targets(year, "BB", text=True)),
        I("SEK-02", SEK, "Persentase dokumen perencanaan dan pelaporan yang tersusun tepat waktu",
          L.PROGRAM, s1, "Dokumen tepat waktu / dokumen wajib x 100%", "%",
          value_type=ValueType.PERCENT, targets=_targets(year, 100)),
        I("SEK-03", SEK, "Persentase realisasi anggaran", L.PROGRAM, s1,
          "Realisasi belanja / pagu anggaran x 100%", "%", value_type=ValueType.PERCENT,
          targets=_targets(year, 95, [20, 45, 70, 95])),
        I("SEK-04", SEK, "Indeks Kepuasan Masyarakat terhadap layanan dinas", L.SASARAN, s1,
          "Survei Kepuasan Masyarakat (Permenpan-RB 14/2017), skala 0-100", "nilai",
          targets=_targets(year, 82)),
        I("SEK-05", SEK, "Persentase ASN yang memenuhi standar kompetensi jabatan", L.PROGRAM, s1,
          "ASN memenuhi standar / seluruh ASN x 100%", "%", value_type=ValueType.PERCENT,
          targets=_targets(year, 80)),
        I("PPTK-01", PPTK, "Tingkat Pengangguran Terbuka", L.TUJUAN, s2,
          "Pengangguran / angkatan kerja x 100% (BPS, Sakernas); semakin rendah semakin baik",
          "%", polarity=Polarity.LOWER, value_type=ValueType.PERCENT,
          targets=_targets(year, "4.10", ["4.30", "4.25", "4.15", "4.10"])),
        I("PPTK-02", PPTK, "Persentase kelulusan peserta pelatihan berbasis kompetensi",
          L.SASARAN, s2, "Peserta lulus uji kompetensi / peserta pelatihan x 100%", "%",
          value_type=ValueType.PERCENT, targets=_targets(year, 85)),
        I("PPTK-03", PPTK, "Persentase lowongan kerja yang terpenuhi", L.SASARAN, s2,
          "Lowongan terisi / lowongan terdaftar x 100%", "%", value_type=ValueType.PERCENT,
          targets=_targets(year, 70)),
        I("PPTK-04", PPTK, "Jumlah pencari kerja yang ditempatkan", L.PROGRAM, s2,
          "Jumlah pencari kerja terdaftar yang ditempatkan (kumulatif)", "orang",
          cumulative=True, targets=_targets(year, 260, [60, 130, 200, 260])),
        I("PPTK-05", PPTK,
          "Persentase peserta pelatihan kewirausahaan yang membentuk wirausaha baru",
          L.PROGRAM, s2, "Wirausaha baru / peserta pelatihan kewirausahaan x 100%", "%",
          value_type=ValueType.PERCENT, targets=_targets(year, 30)),
        I("PPTK-06", PPTK, "Jumlah tenaga kerja yang dilatih", L.KEGIATAN, s2,
          "Peserta pelatihan berbasis kompetensi (kumulatif)", "orang", cumulative=True,
          targets=_targets(year, 200, [40, 100, 160, 200])),
        I("HIJS-01", HIJS, "Persentase kasus hubungan industrial yang ditindaklanjuti",
          L.SASARAN, s3, "Kasus ditindaklanjuti / kasus tercatat x 100%", "%",
          value_type=ValueType.PERCENT, targets=_targets(year, 100)),
        I("HIJS-02", HIJS, "Persentase perusahaan yang memiliki Peraturan Perusahaan atau PKB",
          L.PROGRAM, s3, "Perusahaan ber-PP/PKB / perusahaan wajib x 100%", "%",
          value_type=ValueType.PERCENT, targets=_targets(year, 60)),
        I("HIJS-03", HIJS, "Persentase pekerja yang terdaftar BPJS Ketenagakerjaan", L.SASARAN,
          s3, "Peserta aktif BPJS TK / pekerja formal x 100%", "%",
          value_type=ValueType.PERCENT, targets=_targets(year, 45)),
        I("HIJS-04", HIJS, "Jumlah perselisihan hubungan industrial", L.PROGRAM, s3,
          "Perselisihan tercatat (kumulatif); semakin rendah semakin baik; capaian = T/R",
          "kasus", polarity=Polarity.LOWER, lower_formula=LowerFormula.RATIO, cumulative=True,
          targets=_targets(year, 12, [3, 6, 9, 12])),
        I("HIJS-05", HIJS, "Jumlah perusahaan yang dibina norma ketenagakerjaan", L.KEGIATAN,
          s3, "Perusahaan yang dibina (kumulatif)", "perusahaan", cumulative=True,
          targets=_targets(year, 40, [10, 20, 30, 40])),
        I("IND-01", IND, "Jumlah IKM yang dibina", L.SASARAN, s4,
          "IKM yang mendapat pembinaan (kumulatif)", "unit", cumulative=True,
          targets=_targets(year, 100, [25, 50, 75, 100])),
        I("IND-02", IND, "Pertumbuhan jumlah IKM", L.SASARAN, s4,
          "(IKM tahun n - IKM tahun n-1) / IKM tahun n-1 x 100%", "%",
          value_type=ValueType.PERCENT, targets=_targets(year, 3)),
        I("IND-03", IND, "Persentase IKM yang memiliki sertifikat halal atau SNI", L.PROGRAM, s4,
          "IKM bersertifikat / IKM binaan x 100%", "%", value_type=ValueType.PERCENT,
          targets=_targets(year, 20)),
        I("IND-04", IND, "Jumlah produk IKM yang dipromosikan", L.KEGIATAN, s4,
          "Produk IKM yang ikut pameran atau promosi daring (kumulatif)", "produk",
          cumulative=True, targets=_targets(year, 30, [5, 12, 20, 30])),
        I("IND-05", IND, "Nilai investasi sektor industri", L.SASARAN, s4,
          "Nilai investasi IKM dan industri menengah (kumulatif)", "Rp", cumulative=True,
          targets=_targets(year, 12_500_000_000,
                           [2_000_000_000, 5_500_000_000, 9_000_000_000, 12_500_000_000])),
    )
    return OfficeSpec(
        name="Dinas Tenaga Kerja dan Perindustrian",
        regency="Kabupaten Lampung Barat",
        place="Liwa",
        unit_code="II.08",
        units=units,
        people=people,
        indicators=indicators,
        example_data=True,
    )


# --------------------------------------------------------------------------------------
# A large office with hostile names (the trust tests): every name a person or a set-up
# workbook could supply, at full length, with the characters that break careless HTML
# (<, >, &, quotes), dots and emoji; targets of 13 digits of rupiah.
# --------------------------------------------------------------------------------------
NAME_LENGTH = 120
_FILL = "Tenaga Kerja dan Perindustrian Kabupaten Lampung Barat"


def long_name(base: str, length: int = NAME_LENGTH) -> str:
    """``base`` padded with ordinary words to exactly ``length`` characters."""
    text = base
    while len(text) < length:
        text += " " + _FILL
    text = text[:length]
    return text if text[-1] != " " else text[:-1] + "."


def large_unit_code(k: int) -> str:
    return f"U{k:02d}"


def large_indicator_code(k: int, i: int) -> str:
    return f"U{k:02d}-{i:02d}"


# the four kinds of indicator of the large office, by position i % 4: (value type,
# unit of measure, annual target, the answer a Kabid types)
RUPIAH_TARGET = Decimal("1250000000000")  # Rp 1,25 triliun: 13 digits
LARGE_KINDS = (
    (ValueType.NUMERIC, 'Rp <juta> & "rupiah"', RUPIAH_TARGET, "Rp 1.234.567.890.123"),
    (ValueType.PERCENT, "% <persen> & 'rasio'", Decimal("85"), "88,5"),
    (ValueType.NUMERIC, 'orang <aktif> & "terdaftar" 👥', Decimal("260"), "195"),
    (ValueType.TEXT, 'predikat <A> & "BB"', 'BB "baik" <A> & 🏆', 'A "sangat baik" <sekali> & 🏆'),
)


def large_answer(i: int) -> str:
    return LARGE_KINDS[i % len(LARGE_KINDS)][3]


def large_office(year: int, units: int = 10, per_unit: int = 40) -> OfficeSpec:
    """EXAMPLE DATA: ``units`` bidang (the first the Sekretariat) of ``per_unit``
    indicators each, every name 120 characters long with ``< > & " '``, dots and
    emoji; a Kabid and a staf per bidang; the leadership and a Bappeda contact."""
    unit_specs = []
    for k in range(1, units + 1):
        if k == 1:
            base = f'Sekretariat <Umum> & "Keuangan" 🏛️ No. {k}. Sub.Bag. \'Perencanaan\''
        else:
            base = f'Bidang <Hubungan> Industrial & "Jamsos" 🏭 No. {k}. Sub. \'Norma\''
        unit_specs.append(UnitSpec(large_unit_code(k), long_name(base), is_secretariat=k == 1))
    first = large_unit_code(1)

    def nip(n: int) -> str:
        return f"19800101{2000 + n:04d}03{n:04d}"

    def person_name(title: str, n: int) -> str:
        return long_name(f'Dr. <{title}> "{n}" O\'Brien & Rekan 👷 Sr., S.T., M.M.')

    people = [
        PersonSpec(person_name("Kadis", 0), Role.KADIS, nip(1), None, "Pembina Utama Muda",
                   long_name('Kepala Dinas <Tenaga Kerja> & "Perindustrian"')),
        PersonSpec(person_name("Sekretaris", 0), Role.SEKRETARIS, nip(2), first,
                   "Pembina Tk. I", "Sekretaris"),
        PersonSpec(person_name("Kasubag", 0), Role.KASUBAG, nip(3), first, "Penata Tk. I",
                   "Kasubag Perencanaan dan Keuangan"),
    ]
    for k in range(1, units + 1):
        code = large_unit_code(k)
        people.append(PersonSpec(person_name("Kabid", k), Role.KABID, nip(10 + k), code,
                                 "Pembina", long_name(f'Kepala <Bidang> "{k}" & 🏭')))
        people.append(PersonSpec(person_name("Staf", k), Role.STAF, nip(100 + k), code,
                                 "Penata Muda", long_name(f'Analis <Data> "{k}" & 📊')))
    people.append(PersonSpec(long_name('Petugas <Bappeda> & "Penerima" 📨'), Role.CONTACT,
                             None, None, "", "Bappeda", agency_key="bappeda"))

    indicators = []
    for k in range(1, units + 1):
        for i in range(1, per_unit + 1):
            value_type, uom, target, _ = LARGE_KINDS[i % len(LARGE_KINDS)]
            text = value_type == ValueType.TEXT
            name = long_name(f'Persentase <capaian> {k}.{i} & "realisasi" O\'Neil 📊 '
                             f'program No. {k}.{i}.')
            indicators.append(IndicatorSpec(
                large_indicator_code(k, i), large_unit_code(k), name, L.SASARAN,
                long_name(f'Sasaran <{k}> & "kinerja" 🎯'),
                long_name(f'Realisasi / target x 100% <sumber: BPS> & "Sakernas" {k}.{i}', 300),
                uom, value_type=value_type,
                targets=_targets(year, target, text=text) if text else
                _targets(year, target)))
    return OfficeSpec(
        name=long_name('Dinas <Tenaga Kerja> & "Perindustrian" 🏢'),
        regency="Kabupaten <Lampung> & \"Barat\"",
        place="Liwa",
        unit_code="II.08",
        units=tuple(unit_specs),
        people=tuple(people),
        indicators=tuple(indicators),
        example_data=True,
    )


def large_script(units: int = 10, per_unit: int = 40) -> dict:
    """The ``ScriptedCycle`` options for :func:`large_office`: every Kabid answers all
    indicators; bidang 2 hands one to its staf and sends a photo, the Sekretariat a PDF;
    bidang 3 is returned once and corrects a 13-digit figure."""
    answers = {large_unit_code(k): [(large_indicator_code(k, i), large_answer(i))
                                    for i in range(1, per_unit + 1)]
               for k in range(1, units + 1)}
    schedule = {}
    for k in range(1, units + 1):  # Tuesday 8 and Wednesday 9 October, office hours
        day, hour = (8, 8 + k) if k <= 6 else (9, 8 + k - 6)
        schedule[large_unit_code(k)] = (day, hour)
    back = min(3, units)
    rupiah = next(i for i in range(1, per_unit + 1) if i % len(LARGE_KINDS) == 0) \
        if per_unit >= len(LARGE_KINDS) else 1
    return {
        "answers": answers,
        "schedule": schedule,
        "correction": (large_indicator_code(back, rupiah), "Rp 9.876.543.210.987"),
        "evidence": {large_indicator_code(min(2, units), 2): "photo",
                     large_indicator_code(1, 1): "pdf"},
        "handover": {large_unit_code(min(2, units)): large_indicator_code(min(2, units),
                                                                           min(3, per_unit))},
    }


async def add_cycle_indicators(session, cycle_id: int, count: int, *, answered_by: int) -> None:
    """EXAMPLE DATA: ``count`` more indicators in an open cycle, spread over its
    office's bidang, each with its target and an answer (the four kinds of
    ``LARGE_KINDS``: 13-digit rupiah, percent, people, a grade), written in bulk, so a
    cycle of thousands of indicators reaches the compile step in seconds (the tests
    and the benchmark of the documents)."""
    from sqlalchemy import func, insert, select

    from models import Cycle, CycleIndicator, Indicator, Submission, Unit
    from models.enums import IndicatorLevel

    cycle = await session.get(Cycle, cycle_id)
    units = list((await session.execute(select(Unit.id).order_by(Unit.id))).scalars())
    start = (await session.execute(select(func.count(Indicator.id)))).scalar_one()
    rows = []
    for n in range(count):
        kind, unit, target, _answer = LARGE_KINDS[n % len(LARGE_KINDS)]
        rows.append({
            "office_id": cycle.office_id, "unit_id": units[n % len(units)],
            "code": f"BSR-{start + n + 1:05d}", "level": IndicatorLevel.SASARAN,
            "sasaran": long_name(f"Sasaran <{n % 40 + 1}> & \"strategis\" 🎯"),
            "name": long_name(f"Indikator {n + 1} <kinerja> & \"capaian\" 'bidang' 📈"),
            "definition": "Realisasi dibagi target dikali 100%", "unit_of_measure": unit,
            "value_type": kind, "sort_order": 1000 + n})
    await session.execute(insert(Indicator), rows)
    ids = dict((await session.execute(select(Indicator.code, Indicator.id).where(
        Indicator.code.in_([r["code"] for r in rows])))).all())
    items, answers = [], []
    for n, r in enumerate(rows):
        kind, _unit, target, _answer = LARGE_KINDS[n % len(LARGE_KINDS)]
        text = kind == ValueType.TEXT
        items.append({"cycle_id": cycle_id, "indicator_id": ids[r["code"]],
                      "unit_id": r["unit_id"], "position": 1000 + n,
                      "target": None if text else target,
                      "target_text": target if text else None})
        if n % 9 == 8:
            answers.append({"cycle_id": cycle_id, "indicator_id": ids[r["code"]], "revision": 1,
                            "raw_text": "", "skipped": True, "note": "Data belum tersedia",
                            "person_id": answered_by})
            continue
        value = (target * Decimal(90 + n % 20) / 100).quantize(Decimal(1)) if not text else None
        answers.append({"cycle_id": cycle_id, "indicator_id": ids[r["code"]], "revision": 1,
                        "raw_text": str(value or ""), "value": value,
                        "value_text": 'B "baik" <cukup> & 🙂' if text else None,
                        "note": "" if n % 5 else "Catatan <bidang> & \"verifikasi\"",
                        "person_id": answered_by})
    await session.execute(insert(CycleIndicator), items)
    await session.execute(insert(Submission), answers)
