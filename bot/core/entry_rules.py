"""Domain rules of step 4's answers, kept out of the conversation handler.

* Plausibility: a value is asked to be confirmed (never refused) when it is negative, a
  percentage over 100, more than ten times or under a tenth of last period's realisation,
  or more than ``TARGET_HIGH`` times / under ``1 / TARGET_LOW`` of the period's target
  (a slipped or missing digit: 1.250 people against a target of 260).
* Readings: a number that ``reports.numbers`` reads as ambiguous ("1.250", "1,250",
  "64.0") is offered in each of its readings; nothing is saved until one is chosen.
* Evidence sent before the value (``pending evidence``) waits in the conversation, per
  indicator, and is attached to the revision that the value makes.
* Analysis (LKjIP "analisis capaian"): after a value whose capaian is under
  ``[measurement] analysis_threshold`` the hindering factor and the follow-up plan are
  asked, above 100 % the supporting factor. The capaian is the one the document shows
  (for a quarterly cycle the "s.d." figures). A text that is only a number is never
  taken as an analysis answer (``is_number``).
"""
from __future__ import annotations

from decimal import Decimal

from bot.texts import t
from reports.measure import Capaian, capaian
from reports.numbers import NumberParseError, ParsedNumber, parse_number

TARGET_HIGH = 4   # a value more than 4 times the target is asked about
TARGET_LOW = 10   # a value under a tenth of the target is asked about
PREV_FACTOR = 10  # against last period's realisation


def readings(parsed: ParsedNumber) -> list[Decimal]:
    """Every value an ambiguous text can mean, the bot's own reading first; [] when the
    text is unambiguous."""
    if not parsed.ambiguous:
        return []
    values = [parsed.value]
    if parsed.alternative is not None and parsed.alternative != parsed.value:
        values.append(parsed.alternative)
    return values


def implausible(value: Decimal | None, *, percent: bool, prev: Decimal | None,
                target: Decimal | None, show) -> list[str]:
    """Why a value looks wrong (one Indonesian line each); ``show`` formats a number the
    way the card does."""
    if value is None:
        return []
    reasons = []
    if value < 0:
        reasons.append(t("e.why_negative"))
    if percent and value > 100:
        reasons.append(t("e.why_percent"))
    if prev is not None and prev > 0 and value >= 0:
        if value > prev * PREV_FACTOR:
            reasons.append(t("e.why_high", prev=show(prev)))
        elif value * PREV_FACTOR < prev:
            reasons.append(t("e.why_low", prev=show(prev)))
    if target is not None and target > 0 and value >= 0 and not (percent and value > 100):
        if value > target * TARGET_HIGH:
            reasons.append(t("e.why_target_high", factor=TARGET_HIGH, target=show(target)))
        elif value * TARGET_LOW < target:
            reasons.append(t("e.why_target_low", target=show(target)))
    return reasons


def pending_evidence(data: dict, item_id: int) -> list[int]:
    """The stored files sent for this indicator before its value."""
    return list((data.get("early") or {}).get(str(item_id), []))


def add_pending_evidence(data: dict, item_id: int, file_id: int) -> bool:
    """Keep a file until the value comes; False when it is already waiting."""
    early = dict(data.get("early") or {})
    files = list(early.get(str(item_id), []))
    if file_id in files:
        return False
    early[str(item_id)] = files + [file_id]
    data["early"] = early
    return True


def take_pending_evidence(data: dict, item_id: int, carried: list[int]) -> list[int]:
    """The waiting files to attach to the new revision (not those it already carries);
    they leave the conversation."""
    early = dict(data.get("early") or {})
    files = early.pop(str(item_id), [])
    if early:
        data["early"] = early
    else:
        data.pop("early", None)
    return [f for f in files if f not in carried]


# ----------------------------------------------------------------- analysis
ANALYSIS_FIELDS = ("penghambat", "upaya", "pendukung")
BELOW = ("penghambat", "upaya")   # under the threshold: both asked, skippable unless
ABOVE = ("pendukung",)            # mandatory; above 100 %: optional


def analysis_fields(result: Capaian, threshold: Decimal) -> list[str]:
    """The analysis questions a measured value calls for, in the order they are asked."""
    if result.percent is not None:
        if result.percent < threshold:
            return list(BELOW)
        if result.percent > 100:
            return list(ABOVE)
        return []
    if result.reached is False:  # no percentage (target 0, a predicate): the verdict
        return list(BELOW)
    return []


def is_number(text: str) -> bool:
    """True when the whole text reads as a number ("12,5", "1.250", "85 %")."""
    try:
        parse_number((text or "").strip())
    except NumberParseError:
        return False
    return True


async def answer_capaian(session, cycle, indicator, item, value: Decimal | None,
                         value_text: str | None, *, text_scale=()) -> Capaian:
    """The capaian of an answer as the measurement document computes it."""
    from bot.core.periods import quarter_history, splits
    from models.enums import ValueType
    from models.indicators import aggregation_of

    if indicator.value_type == ValueType.TEXT:
        target, real = item.target_text, value_text
    else:
        target, real = item.target, value
        # "last": the entered figure is already the "s.d." one, against the cycle's own
        # "s.d." target; sum and average need the earlier quarters
        if splits(cycle, indicator) and aggregation_of(indicator) != "last":
            history = await quarter_history(session, cycle, [indicator.id])
            fig = history.figures(indicator, real, target)
            target, real = fig.target_sd, fig.realisasi_sd
    return capaian(target, real, polarity=indicator.polarity,
                   lower_formula=indicator.lower_formula, value_type=indicator.value_type,
                   text_scale=tuple(text_scale) or None)


async def analysis_of(wf, cycle, indicator, item, sub) -> tuple[Capaian | None, list[str]]:
    """The capaian of the saved answer ``sub`` and the analysis questions it calls for
    (none for a skip)."""
    if sub is None or sub.skipped:
        return None, []
    cfg = wf.sv.config.measurement
    result = await answer_capaian(wf.s, cycle, indicator, item, sub.value, sub.value_text,
                                  text_scale=cfg.text_scale)
    return result, analysis_fields(result, Decimal(str(cfg.analysis_threshold)))


async def analysis_for(wf, cycle, indicator, item, sub) -> list[str]:
    """The analysis questions for the saved answer ``sub``."""
    return (await analysis_of(wf, cycle, indicator, item, sub))[1]


def analysis_of_sub(sub) -> dict[str, str]:
    """The analysis answers a revision holds (carried into the next one that keeps the
    value)."""
    if sub is None:
        return {}
    return {f: getattr(sub, f) for f in ANALYSIS_FIELDS if (getattr(sub, f) or "").strip()}


def analysis_required(wf, field: str) -> bool:
    """The hindering factor and the follow-up plan cannot be skipped when the config
    makes them mandatory; the supporting factor always can."""
    return field in BELOW and bool(wf.sv.config.measurement.analysis_mandatory)


async def missing_analysis(wf, cycle, indicator, item, sub) -> list[str]:
    """The mandatory analysis answers the saved answer still lacks."""
    return [f for f in await analysis_for(wf, cycle, indicator, item, sub)
            if analysis_required(wf, f) and not (getattr(sub, f) or "").strip()]
