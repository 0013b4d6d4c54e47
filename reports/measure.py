"""Measurement maths of the SOP "Pengumpulan dan Pengukuran Data Kinerja" (pure functions).

Capaian (achievement) of an indicator, per the SOP (sop/README.md, "Measuring performance
data"):

* higher is better:  capaian = R / T × 100 %
* lower is better, MIRROR (default):  capaian = (2T − R) / T × 100 %
* lower is better, RATIO (per-indicator option):  capaian = T / R × 100 %

where T is the target and R the realisation. Everything is :class:`decimal.Decimal`;
``Capaian.percent`` is the raw, unrounded result (round only for display, with
:func:`round_half_up`).

Cases that have no percentage are explicit statuses, never a crash or a silent 0:

=====================  ==========================================================
``NO_DATA``            realisation missing (``None``); never treated as 0
``NO_TARGET``          target missing (checked first: without a target nothing can
                       be measured, whatever the realisation)
``TARGET_ZERO``        T = 0 (any formula). ``percent`` is None but ``reached`` is
                       decided by comparing R with T by polarity: higher R ≥ 0 is
                       met; lower R ≤ 0 is met (zero cases of something
                       lower-is-better with a target of zero cases: met)
``REALISATION_ZERO``   RATIO formula with R = 0 (T / 0); R = 0 ≤ T, so ``reached``
                       is True
``NEGATIVE_VALUE``     T < 0, or R < 0 under the RATIO formula: the formulas give
                       misleading signs there, so no percentage; ``reached`` by
                       comparison as above
``TEXT_MET`` /         text indicators (e.g. a predicate "BB"), compared after
``TEXT_NOT_MET``       normalisation, optionally on an ordered grade scale
=====================  ==========================================================

A MIRROR result may be negative (R > 2T): it is kept as computed and rated "Kurang".
``reached`` is True exactly when R meets T by polarity (R ≥ T, or R ≤ T), which for a
positive target is the same as ``percent >= 100``.

The optional :class:`CapPolicy` implements the SAKIP guidance that a capaian above
110 % is scored as 120 %; it is off by default (``cap=None``), applies to ``score`` only
(``percent`` stays raw) and only strictly above the threshold (110 % exactly stays 110).
The rating band (``kategori``) is taken from ``score``.

All user-visible explanations are in :data:`KETERANGAN`, one catalogue.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from enum import StrEnum
from typing import Final, Literal

from models.enums import LowerFormula, Polarity, ValueType
from reports.numbers import format_percent, round_half_up

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_BANDS",
    "KETERANGAN",
    "Capaian",
    "CapaianStatus",
    "CapPolicy",
    "RatingBand",
    "SAKIP_SCALE",
    "Summary",
    "capaian",
    "normalise_text",
    "PeriodFigures",
    "period_figures",
    "period_realisation",
    "quarter_increment",
    "rate",
    "round_half_up",
    "summarise",
    "target_for_period",
]

Number = Decimal | int
QUARTERS: Final = (1, 2, 3, 4)
#: How the "s.d. triwulan" realisation is built from the quarters' figures.
AGGREGATIONS: Final = ("sum", "last", "average")
_HUNDRED: Final = Decimal(100)
_CONTEXT: Final = Context(prec=34)  # decimal128 precision, independent of the caller's


#: The SAKIP grade scale (predikat evaluasi AKIP), worst to best, for text indicators.
SAKIP_SCALE: Final[tuple[str, ...]] = ("D", "C", "CC", "B", "BB", "A", "AA")


@dataclass(frozen=True)
class RatingBand:
    """A rating applies from ``minimum`` (inclusive) up to the next higher band."""

    minimum: Decimal
    label: str


DEFAULT_BANDS: Final[tuple[RatingBand, ...]] = (
    RatingBand(Decimal(100), "Sangat Berhasil"),  # capaian >= 100 %
    RatingBand(Decimal(75), "Berhasil"),  # 75 % <= capaian < 100 %
    RatingBand(Decimal(55), "Cukup"),  # 55 % <= capaian < 75 %
    RatingBand(Decimal("-Infinity"), "Kurang"),  # below 55 %, negative included
)


@dataclass(frozen=True)
class CapPolicy:
    """Capaian strictly above ``above`` percent is scored as ``score`` percent."""

    above: Decimal = Decimal(110)
    score: Decimal = Decimal(120)


class CapaianStatus(StrEnum):
    OK = "ok"
    NO_DATA = "belum_ada_data"
    NO_TARGET = "target_tidak_ada"
    TARGET_ZERO = "target_nol"
    REALISATION_ZERO = "realisasi_nol"
    NEGATIVE_VALUE = "nilai_negatif"
    TEXT_MET = "teks_sesuai"
    TEXT_NOT_MET = "teks_tidak_sesuai"


KETERANGAN: Final[dict[str, str]] = {
    "reached": "Target tercapai",
    "not_reached": "Target belum tercapai",
    "capped": "Capaian {percent} di atas {above}: dinilai {score}",
    "negative_mirror": (
        "Target belum tercapai; capaian negatif karena realisasi lebih dari dua kali target"
    ),
    "negative_percent": "Target belum tercapai; capaian negatif karena realisasi negatif",
    "no_data": "Realisasi belum diisi",
    "no_target": "Target belum ditetapkan",
    "target_zero": "Target 0: capaian tidak dapat dihitung sebagai persentase",
    "realisation_zero": (
        "Realisasi 0: capaian dengan rumus target/realisasi tidak dapat dihitung"
    ),
    "negative_value": "Nilai negatif: capaian tidak dapat dihitung sebagai persentase",
    "verdict_met": "realisasi memenuhi target",
    "verdict_not_met": "realisasi tidak memenuhi target",
    "text_met": "Realisasi sesuai target",
    "text_better": "Realisasi ({realisasi}) lebih baik dari target ({target})",
    "text_not_met": "Realisasi ({realisasi}) belum sesuai target ({target})",
    "text_off_scale": "Nilai {value} tidak ada dalam skala penilaian ({scale})",
}


@dataclass(frozen=True)
class Capaian:
    """The measurement of one indicator for one period.

    ``percent``: raw capaian in percent (unrounded), None when not computable;
    ``score``: ``percent`` after the cap policy; ``kategori``: rating of ``score``;
    ``reached``: whether the realisation meets the target (None when unknown);
    ``keterangan``: short Indonesian explanation for documents.
    """

    status: CapaianStatus
    percent: Decimal | None
    score: Decimal | None
    kategori: str | None
    reached: bool | None
    keterangan: str

    @property
    def measurable(self) -> bool:
        """True when both target and realisation were present."""
        return self.status not in (CapaianStatus.NO_DATA, CapaianStatus.NO_TARGET)


def rate(percent: Decimal, bands: Sequence[RatingBand] = DEFAULT_BANDS) -> str:
    """Label of the highest band whose minimum is <= ``percent``.

    Boundaries belong to the upper band (100 -> "Sangat Berhasil", 75 -> "Berhasil",
    55 -> "Cukup"). Anything below every minimum gets the lowest band's label, so the
    lowest band is the catch-all "else" band.
    """
    if not bands:
        raise ValueError("at least one rating band is needed")
    ordered = sorted(bands, key=lambda b: b.minimum, reverse=True)
    for band in ordered:
        if percent >= band.minimum:
            return band.label
    return ordered[-1].label


# ---------------------------------------------------------------- capaian


def _numeric(value: object, name: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(
            f"{name} of a numeric indicator must be Decimal, int or None, "
            f"got {type(value).__name__} (parse user input with reports.numbers first)"
        )
    d = Decimal(value)
    if not d.is_finite():
        raise ValueError(f"{name} must be finite, got {d}")
    return d


def _meets(realisasi: Decimal, target: Decimal, polarity: Polarity) -> bool:
    return realisasi >= target if polarity is Polarity.HIGHER else realisasi <= target


def _no_percent(
    status: CapaianStatus, key: str, realisasi: Decimal, target: Decimal, polarity: Polarity
) -> Capaian:
    reached = _meets(realisasi, target, polarity)
    verdict = KETERANGAN["verdict_met" if reached else "verdict_not_met"]
    return Capaian(status, None, None, None, reached, f"{KETERANGAN[key]}; {verdict}")


def capaian(
    target: Number | str | None,
    realisasi: Number | str | None,
    *,
    polarity: Polarity | str = Polarity.HIGHER,
    lower_formula: LowerFormula | str = LowerFormula.MIRROR,
    value_type: ValueType | str = ValueType.NUMERIC,
    cap: CapPolicy | None = None,
    bands: Sequence[RatingBand] = DEFAULT_BANDS,
    text_scale: Sequence[str] | None = None,
) -> Capaian:
    """Measure one indicator: target ``T`` against realisation ``R``.

    Numeric (and percent) indicators take ``Decimal``/``int`` values; text indicators
    (``value_type=TEXT``) take strings and an optional ``text_scale`` of grades ordered
    from worst to best (e.g. ``("C", "CC", "B", "BB", "A", "AA")``), on which a better
    grade than the target also counts as met. See the module docstring for the rules.
    """
    polarity = Polarity(polarity)
    lower_formula = LowerFormula(lower_formula)
    if ValueType(value_type) is ValueType.TEXT:
        return _text_capaian(target, realisasi, text_scale)

    t = _numeric(target, "target")
    r = _numeric(realisasi, "realisasi")
    if t is None:
        return Capaian(CapaianStatus.NO_TARGET, None, None, None, None, KETERANGAN["no_target"])
    if r is None:
        return Capaian(CapaianStatus.NO_DATA, None, None, None, None, KETERANGAN["no_data"])
    if t == 0:
        return _no_percent(CapaianStatus.TARGET_ZERO, "target_zero", r, t, polarity)
    if t < 0:
        return _no_percent(CapaianStatus.NEGATIVE_VALUE, "negative_value", r, t, polarity)

    ratio = polarity is Polarity.LOWER and lower_formula is LowerFormula.RATIO
    if ratio and r == 0:
        return _no_percent(CapaianStatus.REALISATION_ZERO, "realisation_zero", r, t, polarity)
    if ratio and r < 0:
        return _no_percent(CapaianStatus.NEGATIVE_VALUE, "negative_value", r, t, polarity)

    with localcontext(_CONTEXT):
        if polarity is Polarity.HIGHER:
            percent = r / t * _HUNDRED
        elif ratio:
            percent = t / r * _HUNDRED
        else:  # lower, mirror
            percent = (2 * t - r) / t * _HUNDRED

    reached = _meets(r, t, polarity)
    score = percent
    keterangan = KETERANGAN["reached" if reached else "not_reached"]
    if percent < 0:
        keterangan = KETERANGAN["negative_percent" if r < 0 else "negative_mirror"]
    if cap is not None and percent > cap.above:
        score = cap.score
        keterangan = KETERANGAN["capped"].format(
            percent=format_percent(percent),
            above=format_percent(cap.above, None),
            score=format_percent(cap.score, None),
        )
    return Capaian(CapaianStatus.OK, percent, score, rate(score, bands), reached, keterangan)


def normalise_text(value: str) -> str:
    """Text indicator comparison form: NFKC, trimmed, casefolded, inner spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def _text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(
            f"{name} of a text indicator must be str or None, got {type(value).__name__}"
        )
    return normalise_text(value) or None  # blank counts as missing


def _text_capaian(
    target: object, realisasi: object, text_scale: Sequence[str] | None
) -> Capaian:
    t = _text(target, "target")
    r = _text(realisasi, "realisasi")
    if t is None:
        return Capaian(CapaianStatus.NO_TARGET, None, None, None, None, KETERANGAN["no_target"])
    if r is None:
        return Capaian(CapaianStatus.NO_DATA, None, None, None, None, KETERANGAN["no_data"])
    shown_t, shown_r = " ".join(str(target).split()), " ".join(str(realisasi).split())

    def result(met: bool, keterangan: str) -> Capaian:
        status = CapaianStatus.TEXT_MET if met else CapaianStatus.TEXT_NOT_MET
        return Capaian(status, None, None, None, met, keterangan)

    if t == r:
        return result(True, KETERANGAN["text_met"])
    if text_scale:
        scale = [normalise_text(g) for g in text_scale]
        if t in scale and r in scale:
            if scale.index(r) > scale.index(t):
                return result(
                    True, KETERANGAN["text_better"].format(realisasi=shown_r, target=shown_t)
                )
            return result(
                False, KETERANGAN["text_not_met"].format(realisasi=shown_r, target=shown_t)
            )
        if t not in scale and r not in scale:
            # free text beside a configured scale: an explicit status, not "off scale"
            return result(
                False, KETERANGAN["text_not_met"].format(realisasi=shown_r, target=shown_t)
            )
        off = shown_r if r not in scale else shown_t
        return result(
            False,
            KETERANGAN["text_not_met"].format(realisasi=shown_r, target=shown_t)
            + "; "
            + KETERANGAN["text_off_scale"].format(value=off, scale=", ".join(text_scale)),
        )
    return result(False, KETERANGAN["text_not_met"].format(realisasi=shown_r, target=shown_t))


# ---------------------------------------------------------------- quarters (triwulan)


def _check_quarter(quarter: int) -> None:
    if quarter not in QUARTERS:
        raise ValueError(f"quarter must be 1..4, got {quarter!r}")


def period_realisation(
    quarter_values: Mapping[int, Decimal | None],
    quarter: int,
    *,
    cumulative: bool,
    aggregation: Literal["sum", "last", "average"] | str = "sum",
) -> Decimal | None:
    """Realisation "s.d. triwulan ``quarter``" (up to and including that quarter).

    * ``cumulative=True`` (each figure already includes the earlier quarters): the
      figure of ``quarter`` itself; ``aggregation`` does not apply.
    * ``cumulative=False`` (figures per quarter): ``"sum"`` adds quarters 1..q (counts:
      people trained, IKM assisted); ``"last"`` takes the figure of quarter q (rates and
      percentages, which are not additive); ``"average"`` the mean of quarters 1..q
      (an index measured every quarter).

    A missing figure that is needed gives None; it is never taken as 0.
    """
    _check_quarter(quarter)
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if cumulative or aggregation == "last":
        return quarter_values.get(quarter)
    values = [quarter_values.get(q) for q in range(1, quarter + 1)]
    if any(v is None for v in values):
        return None
    with localcontext(_CONTEXT):
        total = sum((v for v in values if v is not None), Decimal(0))
        return total / len(values) if aggregation == "average" else total


@dataclass(frozen=True)
class PeriodFigures:
    """Target and realisation of one quarter ("TW II") and up to it ("s.d. TW II")."""

    target: Decimal | None
    realisasi: Decimal | None
    target_sd: Decimal | None
    realisasi_sd: Decimal | None


def period_figures(
    entered: Mapping[int, Decimal | None],
    targets: Mapping[int, Decimal | None],
    quarter: int,
    *,
    aggregation: str,
    cumulative: bool,
) -> PeriodFigures:
    """The quarter's own figures and the "s.d." figures of an indicator.

    ``entered``: the figure entered in each quarter's cycle; ``targets``: the quarterly
    targets, each "s.d. triwulan q" (the set-up workbook's quarterly targets).

    * ``"sum"`` / ``"average"``: the entered figure is the quarter's own realisation;
      "s.d." is the sum / mean of quarters 1..q. The quarter's own target of a sum is
      T(q) − T(q−1); of an average, T(q).
    * ``"last"``: the entered figure is already "s.d. triwulan q"; the quarter's own
      realisation and target are the increments over q−1 when the indicator is
      ``cumulative``, else the same figures.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    target_sd = targets.get(quarter)
    if aggregation == "last":
        real_sd = entered.get(quarter)
        if cumulative:
            return PeriodFigures(quarter_increment(targets, quarter),
                                 quarter_increment(entered, quarter), target_sd, real_sd)
        return PeriodFigures(target_sd, real_sd, target_sd, real_sd)
    real_sd = period_realisation(entered, quarter, cumulative=False, aggregation=aggregation)
    own_target = quarter_increment(targets, quarter) if aggregation == "sum" else target_sd
    return PeriodFigures(own_target, entered.get(quarter), target_sd, real_sd)


def quarter_increment(
    cumulative_values: Mapping[int, Decimal | None], quarter: int
) -> Decimal | None:
    """Per-quarter increment of a cumulative indicator: figure(q) − figure(q−1).

    Quarter 1 is its own figure. None when either figure is missing.
    """
    _check_quarter(quarter)
    current = cumulative_values.get(quarter)
    if current is None:
        return None
    if quarter == 1:
        return current
    previous = cumulative_values.get(quarter - 1)
    if previous is None:
        return None
    with localcontext(_CONTEXT):
        return current - previous


def target_for_period(
    annual: Decimal | None,
    quarters: Mapping[int, Decimal | None],
    kind: Literal["quarterly", "annual"] | str,
    quarter: int | None = None,
    *,
    cumulative: bool = True,
    aggregation: Literal["sum", "last"] = "sum",
) -> Decimal | None:
    """The target a realisation of a period is measured against.

    ``kind="annual"`` (also ``CycleKind.ANNUAL``): the annual target. ``kind="quarterly"``:
    the target "s.d. triwulan ``quarter``", built from the quarterly targets the same way
    as :func:`period_realisation` builds the realisation (by default the quarterly targets
    are taken as cumulative, i.e. the figure of that quarter). A missing quarterly target
    gives None; there is no silent fallback to the annual target.
    """
    if kind == "annual":
        return annual
    if kind != "quarterly":
        raise ValueError(f"kind must be 'quarterly' or 'annual', got {kind!r}")
    if quarter is None:
        raise ValueError("a quarterly target needs the quarter")
    return period_realisation(quarters, quarter, cumulative=cumulative, aggregation=aggregation)


# ---------------------------------------------------------------- summary


@dataclass(frozen=True)
class Summary:
    """Counts over a set of measurements.

    ``with_data``: target and realisation both present (``reached + not_reached``);
    ``no_data``: realisation missing; ``no_target``: target missing;
    ``average_score``: mean ``score`` of the results that have one (unrounded), None if
    none has; ``scored``: how many results that mean is over.
    """

    total: int
    with_data: int
    reached: int
    not_reached: int
    no_data: int
    average_score: Decimal | None
    no_target: int = 0
    scored: int = 0


def summarise(results: Sequence[Capaian]) -> Summary:
    scores = [c.score for c in results if c.score is not None]
    average: Decimal | None = None
    if scores:
        with localcontext(_CONTEXT):
            average = sum(scores, Decimal(0)) / len(scores)
    return Summary(
        total=len(results),
        with_data=sum(1 for c in results if c.measurable),
        reached=sum(1 for c in results if c.reached is True),
        not_reached=sum(1 for c in results if c.reached is False),
        no_data=sum(1 for c in results if c.status is CapaianStatus.NO_DATA),
        average_score=average,
        no_target=sum(1 for c in results if c.status is CapaianStatus.NO_TARGET),
        scored=len(scores),
    )
