"""Measurement maths, written as the SOP's worked examples (sop/README.md, "Measuring
performance data"). Expected values are computed by hand in the comments."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from models.enums import LowerFormula, Polarity, ValueType
from reports.measure import (
    DEFAULT_BANDS,
    Capaian,
    CapaianStatus,
    CapPolicy,
    RatingBand,
    capaian,
    period_realisation,
    quarter_increment,
    rate,
    round_half_up,
    summarise,
    target_for_period,
)

PREDIKAT = ("C", "CC", "B", "BB", "A", "AA")  # SAKIP predicates, worst to best


# ---------------------------------------------------------------- the three formulas


def test_higher_is_better_lulusan_pelatihan() -> None:
    # persentase kelulusan peserta pelatihan: target 80, realisasi 85,5
    # 85,5 / 80 × 100 = 106,875 % -> 106,88 % (half up), >= 100: Sangat Berhasil
    c = capaian(D(80), D("85.5"))
    assert c.status is CapaianStatus.OK
    assert c.percent == D("106.875")  # raw, unrounded
    assert round_half_up(c.percent) == D("106.88")
    assert c.score == c.percent  # no cap policy by default
    assert c.kategori == "Sangat Berhasil"
    assert c.reached is True
    assert c.keterangan == "Target tercapai"


def test_higher_is_better_below_target() -> None:
    # lowongan kerja yang terpenuhi: target 60 %, realisasi 45 %
    # 45 / 60 × 100 = 75 % -> Berhasil (75 is the band's own minimum), target not reached
    c = capaian(D(60), D(45), value_type=ValueType.PERCENT)
    assert c.percent == D(75)
    assert c.kategori == "Berhasil"
    assert c.reached is False
    assert c.keterangan == "Target belum tercapai"


def test_lower_is_better_mirror_tpt() -> None:
    # Tingkat Pengangguran Terbuka: target 5,2 %, realisasi 5,0 % (lower, mirror)
    # (2 × 5,2 − 5,0) / 5,2 × 100 = (10,4 − 5,0) / 5,2 × 100 = 5,4 / 5,2 × 100
    # = 103,846153... % -> 103,85 %
    c = capaian(D("5.2"), D("5.0"), polarity=Polarity.LOWER)
    assert c.status is CapaianStatus.OK
    assert round_half_up(c.percent) == D("103.85")
    assert c.kategori == "Sangat Berhasil"
    assert c.reached is True


def test_lower_is_better_mirror_missed() -> None:
    # TPT target 5,2 %, realisasi 6,5 %: (10,4 − 6,5) / 5,2 × 100 = 3,9 / 5,2 × 100 = 75 %
    c = capaian(D("5.2"), D("6.5"), polarity=Polarity.LOWER, lower_formula=LowerFormula.MIRROR)
    assert c.percent == D(75)
    assert c.kategori == "Berhasil"
    assert c.reached is False


def test_lower_is_better_mirror_negative_is_kept() -> None:
    # TPT target 5 %, realisasi 12 %: (10 − 12) / 5 × 100 = −40 %; kept negative, Kurang
    c = capaian(D(5), D(12), polarity="lower")  # a stored string value is accepted
    assert c.status is CapaianStatus.OK
    assert c.percent == D(-40)
    assert c.score == D(-40)
    assert c.kategori == "Kurang"
    assert c.reached is False
    assert "negatif" in c.keterangan


def test_lower_is_better_ratio() -> None:
    # option T / R: target 5,2 %, realisasi 4,0 % -> 5,2 / 4,0 × 100 = 130 %
    c = capaian(D("5.2"), D("4.0"), polarity=Polarity.LOWER, lower_formula=LowerFormula.RATIO)
    assert c.percent == D(130)
    assert c.reached is True
    # and missed: 5,2 / 6,5 × 100 = 80 %
    c = capaian(D("5.2"), D("6.5"), polarity=Polarity.LOWER, lower_formula=LowerFormula.RATIO)
    assert c.percent == D(80)
    assert c.reached is False


def test_ints_are_accepted_and_exact() -> None:
    # jumlah IKM yang dibina: target 40 unit, realisasi 30 -> 30 / 40 × 100 = 75 %
    assert capaian(40, 30).percent == D(75)


# ---------------------------------------------------------------- no percentage: explicit


def test_missing_realisation_is_no_data_never_zero() -> None:
    c = capaian(D(80), None)
    assert c.status is CapaianStatus.NO_DATA
    assert c.status == "belum_ada_data"
    assert (c.percent, c.score, c.kategori, c.reached) == (None, None, None, None)
    assert c.keterangan == "Realisasi belum diisi"


def test_missing_target() -> None:
    c = capaian(None, D(10))
    assert c.status is CapaianStatus.NO_TARGET
    assert c.percent is None and c.reached is None
    # with neither, the missing target is reported: nothing can be measured without it
    assert capaian(None, None).status is CapaianStatus.NO_TARGET


def test_zero_target_higher() -> None:
    # kasus hubungan industrial ditindaklanjuti, target 0, realisasi 3: R / 0 is undefined
    c = capaian(D(0), D(3))
    assert c.status is CapaianStatus.TARGET_ZERO
    assert c.percent is None and c.score is None and c.kategori is None
    assert c.reached is True  # 3 >= 0
    assert c.keterangan.startswith("Target 0: capaian tidak dapat dihitung sebagai persentase")
    assert "memenuhi target" in c.keterangan


def test_zero_target_lower_zero_realisation_is_met() -> None:
    # zero cases of something lower-is-better against a target of zero cases: met,
    # but still no percentage (2×0 − 0) / 0
    c = capaian(D(0), D(0), polarity=Polarity.LOWER)
    assert c.status is CapaianStatus.TARGET_ZERO
    assert c.percent is None
    assert c.reached is True


def test_zero_target_lower_positive_realisation_is_not_met() -> None:
    c = capaian(D(0), D(2), polarity=Polarity.LOWER, lower_formula=LowerFormula.RATIO)
    assert c.status is CapaianStatus.TARGET_ZERO
    assert c.reached is False
    assert "tidak memenuhi target" in c.keterangan


def test_ratio_with_zero_realisation() -> None:
    # T / R with R = 0: 5,2 / 0 is undefined; 0 <= 5,2 so the target is met
    c = capaian(D("5.2"), D(0), polarity=Polarity.LOWER, lower_formula=LowerFormula.RATIO)
    assert c.status is CapaianStatus.REALISATION_ZERO
    assert c.percent is None
    assert c.reached is True
    # the mirror formula has no such problem: (10,4 − 0) / 5,2 × 100 = 200 %
    assert capaian(D("5.2"), D(0), polarity=Polarity.LOWER).percent == D(200)


def test_negative_target_has_no_percentage() -> None:
    # laju pertumbuhan target −2 %, realisasi −1 %: R / T = 50 % would call an
    # over-achievement a miss, so no percentage; −1 >= −2 is met
    c = capaian(D(-2), D(-1))
    assert c.status is CapaianStatus.NEGATIVE_VALUE
    assert c.percent is None
    assert c.reached is True


def test_numeric_indicator_refuses_unparsed_text() -> None:
    with pytest.raises(TypeError):
        capaian(D(80), "85,5")  # type: ignore[arg-type]


# ---------------------------------------------------------------- text indicators


def test_text_predicate_exact_after_normalisation() -> None:
    c = capaian(" bb ", "BB", value_type=ValueType.TEXT)
    assert c.status is CapaianStatus.TEXT_MET
    assert c.reached is True
    assert c.percent is None
    assert c.keterangan == "Realisasi sesuai target"
    # inner spaces are collapsed too
    assert capaian("Wajar  Tanpa Pengecualian", "wajar tanpa pengecualian",
                   value_type="text").status is CapaianStatus.TEXT_MET


def test_text_predicate_bb_against_b_without_scale_is_not_met() -> None:
    c = capaian("B", "BB", value_type=ValueType.TEXT)
    assert c.status is CapaianStatus.TEXT_NOT_MET
    assert c.reached is False


def test_text_predicate_better_grade_on_scale_is_met() -> None:
    # target predikat B, realisasi BB: BB ranks above B on the SAKIP scale
    c = capaian("B", "BB", value_type=ValueType.TEXT, text_scale=PREDIKAT)
    assert c.status is CapaianStatus.TEXT_MET
    assert c.reached is True
    assert c.keterangan == "Realisasi (BB) lebih baik dari target (B)"


def test_text_predicate_worse_grade_on_scale_is_not_met() -> None:
    # target BB, realisasi B
    c = capaian("BB", "b", value_type=ValueType.TEXT, text_scale=PREDIKAT)
    assert c.status is CapaianStatus.TEXT_NOT_MET
    assert c.reached is False
    assert c.keterangan == "Realisasi (b) belum sesuai target (BB)"


def test_text_value_off_the_scale() -> None:
    c = capaian("BB", "Baik", value_type=ValueType.TEXT, text_scale=PREDIKAT)
    assert c.status is CapaianStatus.TEXT_NOT_MET
    assert "tidak ada dalam skala" in c.keterangan


def test_text_missing_values() -> None:
    assert capaian("BB", None, value_type=ValueType.TEXT).status is CapaianStatus.NO_DATA
    assert capaian("BB", "   ", value_type=ValueType.TEXT).status is CapaianStatus.NO_DATA
    assert capaian(None, "BB", value_type=ValueType.TEXT).status is CapaianStatus.NO_TARGET


# ---------------------------------------------------------------- cap policy


def test_cap_policy_115_scored_as_120() -> None:
    # target 100, realisasi 115 -> 115 % > 110 %: score 120 (SAKIP guidance)
    c = capaian(D(100), D(115), cap=CapPolicy())
    assert c.percent == D(115)  # the raw capaian stays visible
    assert c.score == D(120)
    assert c.kategori == "Sangat Berhasil"
    assert c.keterangan == "Capaian 115,00% di atas 110%: dinilai 120%"


def test_cap_policy_threshold_is_strict_and_off_by_default() -> None:
    assert capaian(D(100), D(110), cap=CapPolicy()).score == D(110)  # not above 110
    assert capaian(D(100), D(115)).score == D(115)  # cap=None


# ---------------------------------------------------------------- rating bands


@pytest.mark.parametrize(
    ("percent", "label"),
    [
        ("100", "Sangat Berhasil"),  # exactly 100: the upper band
        ("99.99", "Berhasil"),
        ("75", "Berhasil"),  # exactly 75
        ("74.99", "Cukup"),
        ("55", "Cukup"),  # exactly 55
        ("54.99", "Kurang"),
        ("0", "Kurang"),
        ("-40", "Kurang"),
        ("250", "Sangat Berhasil"),
    ],
)
def test_bands_at_their_boundaries(percent: str, label: str) -> None:
    assert rate(D(percent)) == label
    assert rate(D(percent), DEFAULT_BANDS) == label


def test_custom_bands_lowest_is_catch_all() -> None:
    bands = (RatingBand(D(90), "Baik"), RatingBand(D(50), "Sedang"))
    assert rate(D(95), bands) == "Baik"
    assert rate(D(10), bands) == "Sedang"


def test_rating_uses_raw_percent_not_rounded() -> None:
    # target 3, realisasi 2,99985 -> 99,995 %: displays as 100,00 but is below 100
    c = capaian(D(3), D("2.99985"))
    assert c.percent == D("99.995")
    assert round_half_up(c.percent) == D("100.00")
    assert c.kategori == "Berhasil"
    assert c.reached is False


def test_round_half_up() -> None:
    assert round_half_up(D("106.875")) == D("106.88")  # banker's rounding would agree here
    assert round_half_up(D("2.665")) == D("2.67")  # ... but not here (half-even: 2,66)
    assert round_half_up(D("-0.125")) == D("-0.13")
    assert round_half_up(D("96.15384615"), 0) == D("96")


# ---------------------------------------------------------------- quarters (triwulan)


def test_per_quarter_counts_are_summed() -> None:
    # peserta pelatihan per triwulan: TW I 20, TW II 35, TW III 25
    # s.d. TW III = 20 + 35 + 25 = 80
    values = {1: D(20), 2: D(35), 3: D(25), 4: None}
    assert period_realisation(values, 3, cumulative=False) == D(80)
    assert period_realisation(values, 1, cumulative=False) == D(20)
    # TW IV not reported yet: no silent 0
    assert period_realisation(values, 4, cumulative=False) is None


def test_per_quarter_rates_take_the_last_figure() -> None:
    # persentase kasus ditindaklanjuti per triwulan: 70 %, 80 %, 90 % -> s.d. TW III: 90 %
    values = {1: D(70), 2: D(80), 3: D(90)}
    assert period_realisation(values, 3, cumulative=False, aggregation="last") == D(90)
    assert period_realisation(values, 4, cumulative=False, aggregation="last") is None


def test_missing_earlier_quarter_gives_none() -> None:
    values = {1: D(20), 3: D(25)}  # TW II never reported
    assert period_realisation(values, 3, cumulative=False) is None


def test_cumulative_quarters() -> None:
    # cumulative figures: TW I 20, TW II 55 (20 + 35), TW III 80 (55 + 25)
    values = {1: D(20), 2: D(55), 3: D(80)}
    assert period_realisation(values, 3, cumulative=True) == D(80)
    assert period_realisation(values, 4, cumulative=True) is None
    # the per-quarter increments: 20, 55 − 20 = 35, 80 − 55 = 25
    assert [quarter_increment(values, q) for q in (1, 2, 3)] == [D(20), D(35), D(25)]
    assert quarter_increment(values, 4) is None
    assert quarter_increment({1: None, 2: D(55)}, 2) is None


def test_quarter_is_validated() -> None:
    with pytest.raises(ValueError):
        period_realisation({}, 5, cumulative=True)
    with pytest.raises(ValueError):
        period_realisation({}, 1, cumulative=False, aggregation="mean")  # type: ignore[arg-type]


def test_target_for_period() -> None:
    quarters = {1: D(20), 2: D(45), 3: D(70), 4: D(100)}  # cumulative targets
    assert target_for_period(D(100), quarters, "annual", 3) == D(100)
    assert target_for_period(D(100), quarters, "quarterly", 3) == D(70)
    # targets set per quarter, summed like the realisation: 20 + 25 + 25 = 70
    per_quarter = {1: D(20), 2: D(25), 3: D(25), 4: D(30)}
    assert target_for_period(D(100), per_quarter, "quarterly", 3, cumulative=False) == D(70)
    # no quarterly target: None, not the annual one
    assert target_for_period(D(100), {}, "quarterly", 2) is None
    with pytest.raises(ValueError):
        target_for_period(D(100), quarters, "monthly", 1)


def test_quarterly_measurement_end_to_end() -> None:
    # s.d. TW III: realisasi 20 + 35 + 25 = 80 against target s.d. TW III 70
    # 80 / 70 × 100 = 114,2857... % -> 114,29 %
    real = period_realisation({1: D(20), 2: D(35), 3: D(25)}, 3, cumulative=False)
    target = target_for_period(D(100), {3: D(70)}, "quarterly", 3)
    c = capaian(target, real)
    assert round_half_up(c.percent) == D("114.29")


# ---------------------------------------------------------------- summary


def test_summarise() -> None:
    results: list[Capaian] = [
        capaian(D(80), D("85.5")),  # 106,875 reached
        capaian(D(60), D(45)),  # 75 not reached
        capaian(D(80), None),  # no data
        capaian(None, D(3)),  # no target
        capaian(D(0), D(0), polarity=Polarity.LOWER),  # target 0, reached, no score
        capaian("B", "BB", value_type=ValueType.TEXT, text_scale=PREDIKAT),  # met
    ]
    s = summarise(results)
    assert s.total == 6
    assert s.with_data == 4
    assert s.reached == 3
    assert s.not_reached == 1
    assert s.reached + s.not_reached == s.with_data
    assert s.no_data == 1
    assert s.no_target == 1
    # average over the two scored results: (106,875 + 75) / 2 = 90,9375
    assert s.scored == 2
    assert s.average_score == D("90.9375")


def test_summarise_empty() -> None:
    s = summarise([])
    assert (s.total, s.with_data, s.average_score) == (0, 0, None)
