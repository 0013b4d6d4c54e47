"""Indonesian number and date notation: parsing what users type, formatting what they read.

Indonesian writes numbers as ``1.234.567,89``: a dot groups thousands and a comma marks
the decimals (DESIGN.md, principle 7). People also paste English-style figures from
spreadsheets (``85.5``, ``1,250,000``), so :func:`parse_number` accepts both, says in
``ParsedNumber.reading`` how it read the text and sets ``ambiguous`` when the bot should
echo that reading back for confirmation.

Decisions (documented here because they are policy, not accident):

* Input is normalised with Unicode NFKC first, so full-width digits (``８５``), the
  digits of other scripts, the no-break space, thin space and narrow no-break space are
  accepted; the Unicode minus ``−`` and the figure/en dashes count as a minus sign;
  zero-width characters are dropped.
  Superscripts, vulgar fractions and circled digits are *not* folded (``10²`` must not
  become 102) and so are rejected as not a number.
* ``,5`` and ``.5`` are accepted as 0,5 (the reading shows the leading zero).
* A trailing ``,-`` (``Rp1.250.000,-``) means "no cents" and is accepted on whole
  numbers only. ``Rp``/``Rp.`` before the number marks a rupiah amount, ``%`` or the word
  ``persen`` after it a percentage; the percentage value is kept as written (``85 %`` ->
  85, not 0,85).
* ``1.250`` is read the Indonesian way (one thousand two hundred fifty) but flagged as
  ambiguous because it could be meant as 1,25; ``1,250`` is read as 1,25 and flagged
  because it could be meant as 1.250. Any English-style reading is flagged too.
* Rejected with an Indonesian message: empty text, letters, more than one number
  (``12 atau 13``, ``12-13``, ``1 250 000``), malformed grouping (``1,2,3``), a doubled
  sign (``--5``), scientific notation (``1e5``: an office form never needs it and an
  ``e`` is more likely a typo), NaN/Infinity, and more than 18 significant digits.
* Any ``str`` gives either a :class:`ParsedNumber` or a :class:`NumberParseError`; no
  other exception escapes (property-tested).

Formatting: numbers ``1.234,5``; percentages ``96,15%`` (the sign written against the
number, as in PUEBI and the CLDR ``id`` locale); rupiah ``Rp 1.250.000``; dates
``10 Februari 2024`` and ``Sabtu, 10 Februari 2024`` (month and day names from Babel).
Rounding for display is always ROUND_HALF_UP (``106,875`` -> ``106,88``), never the
banker's rounding that :mod:`decimal` uses by default.

All user-visible texts of this module are in :data:`MESSAGES`, one catalogue, so the
bot's text catalogue can take them over.
"""
from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Final

from babel.dates import format_date as _babel_format_date
from babel.numbers import get_decimal_symbol, get_group_symbol

__all__ = [
    "MESSAGES",
    "MAX_SIGNIFICANT_DIGITS",
    "NumberParseError",
    "ParsedNumber",
    "format_date",
    "format_date_long",
    "format_duration",
    "format_number",
    "format_percent",
    "format_rupiah",
    "parse_number",
    "round_half_up",
    "terbilang",
]

LOCALE: Final = "id"
DECIMAL_SEP: Final[str] = get_decimal_symbol(LOCALE)  # ","
GROUP_SEP: Final[str] = get_group_symbol(LOCALE)  # "."
PERCENT_SUFFIX: Final = "%"  # written against the number: 96,15%
RUPIAH_PREFIX: Final = "Rp "
MAX_SIGNIFICANT_DIGITS: Final = 18

MESSAGES: Final[dict[str, str]] = {
    # errors (each ends with an example of a correct entry)
    "empty": "Nilai belum diisi. Contoh penulisan: 85,5 atau 1.250.000",
    "not_a_number": 'Nilai "{text}" bukan angka. Contoh penulisan: 85,5 atau 1.250.000',
    "multiple": (
        'Nilai "{text}" berisi lebih dari satu angka. Tulis satu angka saja, '
        "misalnya 85,5 atau 1.250.000 (titik sebagai pemisah ribuan, bukan spasi)"
    ),
    "bad_format": (
        'Penulisan angka "{text}" tidak dikenali. Gunakan titik sebagai pemisah ribuan '
        "dan koma sebagai tanda desimal, misalnya 1.250.000,75"
    ),
    "double_sign": 'Nilai "{text}" memuat tanda minus/plus ganda. Contoh penulisan: -2,5',
    "scientific": (
        'Notasi ilmiah seperti "{text}" tidak digunakan. Tulis angka lengkap, '
        "misalnya 100.000"
    ),
    "not_finite": 'Nilai "{text}" bukan angka yang sah. Contoh penulisan: 85,5',
    "too_many_digits": (
        'Nilai "{text}" terlalu panjang (lebih dari {limit} angka penting). '
        "Periksa kembali angkanya"
    ),
    "percent_and_rupiah": (
        'Nilai "{text}" memakai "Rp" dan "%" sekaligus. Tulis salah satu, '
        "misalnya Rp 1.250.000 atau 85,5%"
    ),
    # readings (how a value was understood)
    "reading": '"{text}" dibaca sebagai {shown}',
    "reading_en_decimal": " (titik dianggap tanda desimal)",
    "reading_en_thousands": " (koma dianggap pemisah ribuan)",
    "reading_en_full": " (format Inggris: koma pemisah ribuan, titik tanda desimal)",
    "reading_id_thousands": (
        " (titik sebagai pemisah ribuan); jika yang dimaksud bilangan desimal, tulis {alt}"
    ),
    "reading_id_decimal": (
        " (koma sebagai tanda desimal); jika yang dimaksud bilangan ribuan, tulis {alt}"
    ),
}

class NumberParseError(ValueError):
    """A text could not be read as a number; ``message`` is shown to the user as is."""

    def __init__(self, message: str, text: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.text = text


@dataclass(frozen=True)
class ParsedNumber:
    """A number read from user input.

    ``value`` is exactly what was written (``85,50`` -> ``Decimal("85.50")``, a
    percentage stays in percent units). ``reading`` is an Indonesian sentence saying how
    the text was read; ``ambiguous`` is True when the text was not in unambiguous
    Indonesian notation and the bot should show ``reading`` and ask for confirmation.
    """

    value: Decimal
    is_percent: bool
    reading: str
    ambiguous: bool = False
    is_rupiah: bool = False
    alternative: Decimal | None = None  # the other way an ambiguous text can be read


# ---------------------------------------------------------------- rounding & formatting


def round_half_up(value: Decimal | int, places: int = 2) -> Decimal:
    """Round for display with ROUND_HALF_UP: ``106.875`` -> ``106.88``, ``-0.125`` -> ``-0.13``."""
    if places < 0:
        raise ValueError("places must be >= 0")
    d = value if isinstance(value, Decimal) else Decimal(value)
    if not d.is_finite():
        raise ValueError(f"cannot round a non-finite value: {d}")
    exponent = Decimal(1).scaleb(-places)
    prec = max(28, d.adjusted() + places + 2)
    return d.quantize(exponent, rounding=ROUND_HALF_UP, context=Context(prec=prec))


def _to_decimal(value: Decimal | int | float) -> Decimal:
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        d = Decimal(repr(value))  # 0.1 -> Decimal("0.1"), not its binary expansion
    else:
        raise TypeError(f"expected Decimal, int or float, got {type(value).__name__}")
    if not d.is_finite():
        raise ValueError(f"cannot format a non-finite value: {d}")
    return d


def _group(digits: str) -> str:
    """``"1250000"`` -> ``"1.250.000"``."""
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return GROUP_SEP.join(parts)


def _format_exact(value: Decimal, *, trim: bool = False) -> str:
    """Indonesian notation with exactly the decimals ``value`` carries (trailing zeros
    dropped when ``trim``)."""
    sign, digits_t, exponent = value.as_tuple()
    digits = "".join(map(str, digits_t))
    assert isinstance(exponent, int)
    if exponent >= 0:
        int_part, frac = digits + "0" * exponent, ""
    else:
        digits = digits.rjust(-exponent + 1, "0")
        int_part, frac = digits[:exponent], digits[exponent:]
    int_part = int_part.lstrip("0") or "0"
    if trim:
        frac = frac.rstrip("0")
    negative = sign == 1 and (int_part != "0" or frac.strip("0") != "")
    text = _group(int_part) + (DECIMAL_SEP + frac if frac else "")
    return ("-" if negative else "") + text


def format_number(value: Decimal | int | float, places: int | None = None) -> str:
    """``Decimal("1234.5")`` -> ``"1.234,5"``.

    ``places=None`` rounds half-up to at most 2 decimals and drops trailing zeros
    (``1234.50`` -> ``"1.234,5"``, ``100.004`` -> ``"100"``); an integer ``places`` shows
    exactly that many (``format_number(1234.5, 2)`` -> ``"1.234,50"``). Never ``"-0"``.
    """
    d = _to_decimal(value)
    if places is None:
        return _format_exact(round_half_up(d, 2), trim=True)
    return _format_exact(round_half_up(d, places))


def format_percent(value: Decimal | int | float, places: int | None = 2) -> str:
    """``Decimal("96.1538")`` -> ``"96,15%"``; the value is already in percent units."""
    return format_number(value, places) + PERCENT_SUFFIX


def format_rupiah(value: Decimal | int | float, places: int = 0) -> str:
    """``1250000`` -> ``"Rp 1.250.000"``; negative amounts as ``"-Rp 1.250.000"``."""
    text = format_number(value, places)
    if text.startswith("-"):
        return "-" + RUPIAH_PREFIX + text[1:]
    return RUPIAH_PREFIX + text


def format_date(d: _dt.date) -> str:
    """``date(2024, 2, 10)`` -> ``"10 Februari 2024"`` (a datetime gives its date)."""
    return _babel_format_date(d, "d MMMM y", locale=LOCALE)


#: Indonesia's three zones by their UTC offset in hours, and their own labels
ZONE_LABELS: Final = {7: "WIB", 8: "WITA", 9: "WIT"}


def zone_label(moment: _dt.datetime) -> str:
    """"WIB", "WITA" or "WIT" for an aware datetime in one of Indonesia's zones (else
    the zone's own abbreviation, or "UTC+hh")."""
    offset = moment.utcoffset()
    if offset is None:
        return ""
    hours, rest = divmod(int(offset.total_seconds()), 3600)
    if not rest and hours in ZONE_LABELS:
        return ZONE_LABELS[hours]
    name = moment.tzname() or ""
    return name if name and not name[0] in "+-" else f"UTC{hours:+03d}"


def format_date_long(d: _dt.date) -> str:
    """``date(2024, 2, 10)`` -> ``"Sabtu, 10 Februari 2024"``."""
    return _babel_format_date(d, "EEEE, d MMMM y", locale=LOCALE)


# ---------------------------------------------------------------- parsing

_MINUS_LIKE = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-"})
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_SPACES = re.compile(r"\s+")
_SIGN = re.compile(r"^([+-])\s*")
_RUPIAH = re.compile(r"^rp\.?\s*", re.IGNORECASE)
_PERCENT = re.compile(r"\s*(?:%|persen)$", re.IGNORECASE)
_NO_CENTS = re.compile(r",\s*-+$")
_BODY = re.compile(r"[0-9.,]+")
_SCIENTIFIC = re.compile(r"[0-9][0-9.,]*e[+-]?[0-9]+", re.IGNORECASE)
_NOT_FINITE = re.compile(r"[+-]?(?:nan|s?nan|inf|infinity|∞)", re.IGNORECASE)
_NUMBER_TOKEN = re.compile(r"[0-9]+(?:[.,][0-9]+)*")
_DOT_GROUPED = re.compile(r"[1-9][0-9]{0,2}(?:\.[0-9]{3})+")
_COMMA_GROUPED = re.compile(r"[1-9][0-9]{0,2}(?:,[0-9]{3})+")
_LEAD_GROUP = re.compile(r"[1-9][0-9]{0,2}")


def _quote(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ascii_digits(text: str) -> str:
    """Decimal digits of any script (Arabic-Indic, Devanagari ...) become ASCII digits."""
    return "".join(
        str(unicodedata.decimal(c)) if not c.isascii() and unicodedata.category(c) == "Nd" else c
        for c in text
    )


def _normalise(text: str) -> str:
    # superscripts, fractions, circled digits (category "No") would turn into plain digits
    # under NFKC ("10²" -> "102"): keep them as they are so that they are rejected
    s = "".join(
        c if unicodedata.category(c) == "No" else unicodedata.normalize("NFKC", c)
        for c in text
    )
    s = _ascii_digits(s).translate(_MINUS_LIKE)
    s = _ZERO_WIDTH.sub("", s)
    return _SPACES.sub(" ", s).strip()


def _fail(key: str, text: str, **extra: object) -> NumberParseError:
    return NumberParseError(MESSAGES[key].format(text=_quote(text), **extra), text)


@dataclass(frozen=True)
class _Split:
    int_part: str
    frac: str
    note: str  # a key of MESSAGES ("" = plain Indonesian)
    alt: tuple[str, str] | None = None  # alternative reading (int_part, frac)

    @property
    def ambiguous(self) -> bool:
        return self.note != ""


def _split(body: str, *, whole_only: bool, rupiah: bool) -> _Split | None:
    """Decide which separator is which; None when the grouping is malformed."""
    if re.search(r"[.,]{2,}", body) or body[-1] in ".,":
        return None
    if body[0] in ".,":
        body = "0" + body
    dots, commas = body.count("."), body.count(",")
    if dots == 0 and commas == 0:
        return _Split(body, "", "")
    if whole_only:  # "1.250.000,-": the comma is taken, dots can only group thousands
        if commas == 0 and (_DOT_GROUPED.fullmatch(body)):
            return _Split(body.replace(".", ""), "", "")
        return None
    if dots == 0:
        if commas == 1:
            int_part, frac = body.split(",")
            if len(frac) == 3 and _LEAD_GROUP.fullmatch(int_part):
                return _Split(int_part, frac, "reading_id_decimal", (int_part + frac, ""))
            return _Split(int_part, frac, "")
        if _COMMA_GROUPED.fullmatch(body):
            return _Split(body.replace(",", ""), "", "reading_en_thousands")
        return None
    if commas == 0:
        if dots == 1:
            int_part, frac = body.split(".")
            if len(frac) == 3 and _LEAD_GROUP.fullmatch(int_part):
                if rupiah:  # "Rp 1.250": rupiah amounts have no thousandths
                    return _Split(int_part + frac, "", "")
                return _Split(int_part + frac, "", "reading_id_thousands", (int_part, frac))
            return _Split(int_part, frac, "reading_en_decimal")
        if _DOT_GROUPED.fullmatch(body):
            return _Split(body.replace(".", ""), "", "")
        return None
    head, _, tail = body.rpartition(",")
    if commas == 1 and "." not in tail and _DOT_GROUPED.fullmatch(head):
        return _Split(head.replace(".", ""), tail, "")
    head, _, tail = body.rpartition(".")
    if dots == 1 and "," not in tail and _COMMA_GROUPED.fullmatch(head):
        return _Split(head.replace(",", ""), tail, "reading_en_full")
    return None


def _decimal(sign: str, int_part: str, frac: str) -> Decimal:
    value = Decimal(f"{int_part or '0'}.{frac}" if frac else (int_part or "0"))
    return -value if sign == "-" and value != 0 else value


def parse_number(text: str) -> ParsedNumber:
    """Read a number written the Indonesian way (or recognisably the English way).

    >>> parse_number("1.250.000,75").value
    Decimal('1250000.75')
    >>> parse_number("85.5").reading
    '"85.5" dibaca sebagai 85,5 (titik dianggap tanda desimal)'

    Raises :class:`NumberParseError` (and nothing else) with an Indonesian message.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_number expects str, got {type(text).__name__}")
    shown_input = _normalise(text)
    if not shown_input:
        raise NumberParseError(MESSAGES["empty"], text)

    body = shown_input
    sign = ""
    rupiah = percent = whole_only = False
    if m := _SIGN.match(body):
        sign, body = m.group(1), body[m.end() :]
    if m := _RUPIAH.match(body):
        rupiah, body = True, body[m.end() :]
        if not sign and (m := _SIGN.match(body)):
            sign, body = m.group(1), body[m.end() :]
    if body[:1] in ("+", "-"):
        raise _fail("double_sign", shown_input)
    if m := _PERCENT.search(body):
        percent, body = True, body[: m.start()]
    if m := _NO_CENTS.search(body):
        whole_only, body = True, body[: m.start()]
    if rupiah and percent:
        raise _fail("percent_and_rupiah", shown_input)

    if not _BODY.fullmatch(body) or not any(c.isdigit() for c in body):
        if _SCIENTIFIC.fullmatch(body):
            raise _fail("scientific", shown_input)
        if _NOT_FINITE.fullmatch(body) or _NOT_FINITE.fullmatch(shown_input):
            raise _fail("not_finite", shown_input)
        if len(_NUMBER_TOKEN.findall(shown_input)) >= 2:
            raise _fail("multiple", shown_input)
        raise _fail("not_a_number", shown_input)

    split = _split(body, whole_only=whole_only, rupiah=rupiah)
    if split is None:
        raise _fail("bad_format", shown_input)
    significant = (split.int_part + split.frac).lstrip("0")
    if len(significant) > MAX_SIGNIFICANT_DIGITS:
        raise _fail("too_many_digits", shown_input, limit=MAX_SIGNIFICANT_DIGITS)

    try:
        value = _decimal(sign, split.int_part, split.frac)
    except InvalidOperation as exc:  # pragma: no cover - the grammar above prevents it
        raise _fail("bad_format", shown_input) from exc

    def decorate(v: Decimal, trim: bool = False) -> str:
        s = _format_exact(v, trim=trim)
        if percent:
            s += PERCENT_SUFFIX
        if rupiah:
            s = ("-" + RUPIAH_PREFIX + s[1:]) if s.startswith("-") else RUPIAH_PREFIX + s
        return s

    shown = decorate(value)
    reading = MESSAGES["reading"].format(text=_quote(shown_input), shown=shown)
    if split.note:
        alt = decorate(_decimal(sign, *split.alt), trim=True) if split.alt else ""
        reading += MESSAGES[split.note].format(shown=shown, alt=alt)
    return ParsedNumber(
        value=value,
        is_percent=percent,
        reading=reading,
        ambiguous=split.ambiguous,
        is_rupiah=rupiah,
        alternative=_decimal(sign, *split.alt) if split.alt else None,
    )


_ONES: Final = ("nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan",
                "sembilan", "sepuluh", "sebelas")
_SCALES: Final = ((10**12, "triliun"), (10**9, "miliar"), (10**6, "juta"), (10**3, "ribu"))


def terbilang(value: Decimal | int) -> str:
    """A whole number in Indonesian words (``1250`` -> "seribu dua ratus lima puluh");
    "" for a fraction or a number of a quadrillion or more (the label shows the digits)."""
    value = Decimal(value)
    if value != value.to_integral_value() or abs(value) >= 10**15:
        return ""
    n = int(value)
    if n < 0:
        return "minus " + terbilang(-n)

    def words(n: int) -> str:
        if n < 12:
            return _ONES[n]
        if n < 20:
            return _ONES[n - 10] + " belas"
        if n < 100:
            return _ONES[n // 10] + " puluh" + (" " + _ONES[n % 10] if n % 10 else "")
        if n < 1000:
            head = "seratus" if n // 100 == 1 else _ONES[n // 100] + " ratus"
            return head + (" " + words(n % 100) if n % 100 else "")
        for size, name in _SCALES:
            if n >= size:
                q, r = divmod(n, size)
                head = "seribu" if size == 1000 and q == 1 else words(q) + " " + name
                return head + (" " + words(r) if r else "")
        return ""  # pragma: no cover

    return words(n)


def format_duration(minutes: int, day_minutes: int) -> str:
    """Working time in words: "2 hari 3 jam", "1 jam 5 menit", "0 menit"."""
    days, rest = divmod(max(0, int(minutes)), day_minutes)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} hari")
    if hours:
        parts.append(f"{hours} jam")
    if mins or not parts:
        parts.append(f"{mins} menit")
    return " ".join(parts)
