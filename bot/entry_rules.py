"""Domain rules of step 4's answers, kept out of the conversation handler.

* Plausibility: a value is asked to be confirmed (never refused) when it is negative, a
  percentage over 100, more than ten times or under a tenth of last period's realisation,
  or more than ``TARGET_HIGH`` times / under ``1 / TARGET_LOW`` of the period's target
  (a slipped or missing digit: 1.250 people against a target of 260).
* Readings: a number that ``reports.numbers`` reads as ambiguous ("1.250", "1,250",
  "64.0") is offered in each of its readings; nothing is saved until one is chosen.
* Evidence sent before the value (``pending evidence``) waits in the conversation, per
  indicator, and is attached to the revision that the value makes.
"""
from __future__ import annotations

from decimal import Decimal

from bot.texts import t
from reports.numbers import ParsedNumber

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
