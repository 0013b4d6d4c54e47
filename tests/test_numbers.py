"""Indonesian number input and output (DESIGN.md principle 7: "1.234,5",
"10 Februari 2024", input "85,5", "1.250.000", "85 %")."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reports.numbers import (
    NumberParseError,
    ParsedNumber,
    format_date,
    format_date_long,
    format_number,
    format_percent,
    format_rupiah,
    parse_number,
)

# ---------------------------------------------------------------- parsing: accepted


@pytest.mark.parametrize(
    ("text", "value", "is_percent", "ambiguous"),
    [
        ("85,5", "85.5", False, False),  # Indonesian decimal comma
        ("1.250.000", "1250000", False, False),  # dots group thousands
        ("1.250.000,75", "1250000.75", False, False),
        ("85 %", "85", True, False),  # percent stays in percent units
        ("85%", "85", True, False),
        ("85 persen", "85", True, False),
        (" 12 ", "12", False, False),
        ("+3", "3", False, False),
        ("-2,5", "-2.5", False, False),
        ("\u22122,5", "-2.5", False, False),  # unicode minus
        ("0,5", "0.5", False, False),
        (",5", "0.5", False, False),  # leading zero supplied
        ("0,250", "0.250", False, False),  # 0,250 cannot be a thousands figure
        ("1.250,-", "1250", False, False),
        ("Rp 1.250.000", "1250000", False, False),
        ("Rp1.250.000,-", "1250000", False, False),
        ("Rp. 5.000", "5000", False, False),
        ("Rp 1.250", "1250", False, False),  # rupiah: a dot can only group thousands
        ("-Rp 5.000", "-5000", False, False),
        ("12,5\u202f%", "12.5", True, False),  # narrow no-break space before %
        ("\uff18\uff15,\uff15", "85.5", False, False),  # full-width digits (NFKC)
        ("\u0661\u0662,5", "12.5", False, False),  # Arabic-Indic digits
        ("85\u200b,5", "85.5", False, False),  # zero-width space dropped
        ("-0", "0", False, False),
        # English notation: accepted, but flagged for confirmation
        ("85.5", "85.5", False, True),
        (".5", "0.5", False, True),
        ("1,250,000", "1250000", False, True),
        ("1,250,000.75", "1250000.75", False, True),
        ("1234.567", "1234.567", False, True),  # 4-digit head: cannot be thousands
        # three digits after a single separator could be either
        ("1.250", "1250", False, True),
        ("1,250", "1.250", False, True),
    ],
)
def test_accepted(text: str, value: str, is_percent: bool, ambiguous: bool) -> None:
    p = parse_number(text)
    assert isinstance(p, ParsedNumber)
    assert p.value == D(value)
    assert p.is_percent is is_percent
    assert p.ambiguous is ambiguous
    assert p.reading.startswith('"')


def test_readings_say_how_the_text_was_read() -> None:
    assert parse_number("85,5").reading == '"85,5" dibaca sebagai 85,5'
    assert parse_number("85.5").reading == (
        '"85.5" dibaca sebagai 85,5 (titik dianggap tanda desimal)'
    )
    assert parse_number("1,250,000").reading == (
        '"1,250,000" dibaca sebagai 1.250.000 (koma dianggap pemisah ribuan)'
    )
    assert parse_number("1.250").reading == (
        '"1.250" dibaca sebagai 1.250 (titik sebagai pemisah ribuan); '
        "jika yang dimaksud bilangan desimal, tulis 1,25"
    )
    assert parse_number("1,250").reading.endswith("jika yang dimaksud bilangan ribuan, tulis 1.250")
    assert parse_number("85 %").reading == '"85 %" dibaca sebagai 85%'
    p = parse_number("Rp1.250.000,-")
    assert p.is_rupiah and p.reading == '"Rp1.250.000,-" dibaca sebagai Rp 1.250.000'


# ---------------------------------------------------------------- parsing: rejected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "belum diisi"),
        ("   ", "belum diisi"),
        ("abc", 'Nilai "abc" bukan angka. Contoh penulisan: 85,5 atau 1.250.000'),
        ("lima", "bukan angka"),
        ("12 atau 13", "lebih dari satu angka"),
        ("12-13", "lebih dari satu angka"),
        ("1 250 000", "lebih dari satu angka"),  # spaces do not group thousands
        ("1,2,3", "tidak dikenali"),
        ("1.2.3", "tidak dikenali"),
        ("1..2", "tidak dikenali"),
        ("12,5.3", "tidak dikenali"),
        ("5,", "tidak dikenali"),
        ("1.250,5,-", "tidak dikenali"),
        ("--5", "ganda"),
        ("+-5", "ganda"),
        ("1e5", "Notasi ilmiah"),
        ("2,5E-3", "Notasi ilmiah"),
        ("NaN", "bukan angka yang sah"),
        ("Infinity", "bukan angka yang sah"),
        ("-inf", "bukan angka yang sah"),
        ("1234567890123456789", "18 angka penting"),  # 19 significant digits
        ("Rp 5 %", '"Rp" dan "%"'),
        ("Rp", "bukan angka"),
        ("%", "bukan angka"),
        ("10²", "bukan angka"),  # a superscript is not folded into 102
    ],
)
def test_rejected_with_indonesian_message(text: str, fragment: str) -> None:
    with pytest.raises(NumberParseError) as info:
        parse_number(text)
    assert fragment in info.value.message
    assert str(info.value) == info.value.message
    assert isinstance(info.value, ValueError)


def test_eighteen_significant_digits_are_fine() -> None:
    assert parse_number("123.456.789.012.345.678").value == D(123456789012345678)
    assert parse_number("0,000000000000000000001").value == D("1E-21")  # leading zeros


@given(st.text())
def test_any_text_parses_or_raises_number_parse_error(text: str) -> None:
    try:
        result = parse_number(text)
    except NumberParseError as exc:
        assert exc.message
    else:
        assert result.value.is_finite()


@given(st.text(alphabet="0123456789.,-+% Rrpe\u2212\u00a0\uff10", max_size=24))
def test_number_like_text_parses_or_raises_number_parse_error(text: str) -> None:
    try:
        parse_number(text)
    except NumberParseError:
        pass


# ---------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (D("1234.5"), None, "1.234,5"),
        (D("1234.50"), None, "1.234,5"),  # trailing zeros trimmed
        (D("1250000"), None, "1.250.000"),
        (D("106.875"), None, "106,88"),  # half up
        (D("100.004"), None, "100"),
        (D("-0.001"), None, "0"),  # never "-0"
        (D("-1234.5"), None, "-1.234,5"),
        (D("1234.5"), 2, "1.234,50"),
        (D("96.15384615"), 0, "96"),
        (1234, None, "1.234"),
        (0.1, 2, "0,10"),  # floats via their shortest repr, not binary noise
        (D("1E+3"), None, "1.000"),
    ],
)
def test_format_number(value: D | int | float, places: int | None, expected: str) -> None:
    assert format_number(value, places) == expected


def test_format_percent() -> None:
    # TPT capaian 103,846153... % -> "103,85%"
    assert format_percent(D("103.846153846")) == "103,85%"
    assert format_percent(D(100)) == "100,00%"
    assert format_percent(D(120), None) == "120%"
    assert format_percent(D("-40")) == "-40,00%"


def test_format_rupiah() -> None:
    assert format_rupiah(1250000) == "Rp 1.250.000"
    assert format_rupiah(D("1250000.5")) == "Rp 1.250.001"
    assert format_rupiah(D("-75000")) == "-Rp 75.000"
    assert format_rupiah(D("1250000.75"), 2) == "Rp 1.250.000,75"


def test_format_dates() -> None:
    assert format_date(dt.date(2024, 2, 10)) == "10 Februari 2024"
    assert format_date_long(dt.date(2024, 2, 10)) == "Sabtu, 10 Februari 2024"
    assert format_date(dt.datetime(2024, 8, 17, 9, 30)) == "17 Agustus 2024"
    assert format_date_long(dt.date(2024, 12, 31)) == "Selasa, 31 Desember 2024"


def test_format_refuses_non_finite() -> None:
    with pytest.raises(ValueError):
        format_number(D("NaN"))
    with pytest.raises(ValueError):
        format_number(float("inf"))


# ---------------------------------------------------------------- round trips

_two_places = st.decimals(
    min_value=D(-(10**15)), max_value=D(10**15), places=2, allow_nan=False, allow_infinity=False
)


@given(_two_places)
def test_format_then_parse_round_trips(value: D) -> None:
    assert parse_number(format_number(value)).value == value
    assert parse_number(format_number(value, 2)).value == value


@given(_two_places)
def test_percent_and_rupiah_round_trip(value: D) -> None:
    p = parse_number(format_percent(value))
    assert p.is_percent and p.value == value
    r = parse_number(format_rupiah(value, 2))
    assert r.is_rupiah and r.value == value
