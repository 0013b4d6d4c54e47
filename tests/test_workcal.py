"""Tests of the working-time calendar on real Indonesian dates.

Office hours are 07:30-16:00 WIB, i.e. 510 minutes per working day. Calendar facts used
below (SKB 3 Menteri 1017/2/2 of 2024 as amended by 933/1/3 of 2025, and 1497/2/5 of
2025; the `holidays` package, categories public and government, with the corrections of
bot/data/hari_libur.toml):

2025  Thu 27 Mar working | Fri 28 Mar cuti Nyepi | Sat 29 Mar Nyepi | Mon 31 Mar-Tue 1 Apr
      Idulfitri | Wed 2-Fri 4 Apr cuti | Mon 7 Apr cuti | Tue 8 Apr working again.
      Mon 12 May Waisak, Tue 13 May cuti. Thu 25 Dec Natal, Fri 26 Dec cuti.
2026  Thu 1 Jan Tahun Baru; Fri 2 Jan working. Wed 18 Mar cuti Nyepi, Thu 19 Mar Nyepi,
      Fri 20 Mar cuti, Sat-Sun 21-22 Mar Idulfitri, Mon-Tue 23-24 Mar cuti, Wed 25 Mar
      working. Thu 24 Dec cuti, Fri 25 Dec Natal.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.core.workcal import (
    DEFAULT_HOLIDAY_FILE,
    WIB,
    HolidayFileError,
    WorkCalendar,
    format_wib,
    load_holiday_file,
    package_holidays,
    to_wib,
)

DAY_MINUTES = 510  # 07:30 -> 16:00


def wib(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=WIB)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar()


# --------------------------------------------------------------------------------------
# Holiday data
# --------------------------------------------------------------------------------------

CUTI_BERSAMA = {
    2024: [
        date(2024, 2, 9),  # Imlek
        date(2024, 3, 12),  # Nyepi
        date(2024, 4, 8), date(2024, 4, 9), date(2024, 4, 12), date(2024, 4, 15),  # Idulfitri
        date(2024, 5, 10),  # Kenaikan
        date(2024, 5, 24),  # Waisak
        date(2024, 6, 18),  # Iduladha
        date(2024, 12, 26),  # Natal
    ],
    2025: [
        date(2025, 1, 28),  # Imlek
        date(2025, 3, 28),  # Nyepi
        date(2025, 4, 2), date(2025, 4, 3), date(2025, 4, 4), date(2025, 4, 7),  # Idulfitri
        date(2025, 5, 13),  # Waisak
        date(2025, 5, 30),  # Kenaikan
        date(2025, 6, 9),  # Iduladha
        date(2025, 8, 18),  # HUT ke-80 RI (SKB perubahan 7 Agustus 2025)
        date(2025, 12, 26),  # Natal
    ],
    2026: [
        date(2026, 2, 16),  # Imlek
        date(2026, 3, 18),  # Nyepi
        date(2026, 3, 20), date(2026, 3, 23), date(2026, 3, 24),  # Idulfitri
        date(2026, 5, 15),  # Kenaikan
        date(2026, 5, 28),  # Iduladha
        date(2026, 12, 24),  # Natal
    ],
}

# Libur nasional of the decrees (17 days each year). The calendar takes them from the
# `holidays` package; if a package upgrade moves one, this test says which, and the fix
# is a [[bukan_libur]] / [[libur]] pair in the holiday file.
LIBUR_NASIONAL = {
    2024: {
        date(2024, 1, 1), date(2024, 2, 8), date(2024, 2, 10), date(2024, 3, 11),
        date(2024, 3, 29), date(2024, 3, 31), date(2024, 4, 10), date(2024, 4, 11),
        date(2024, 5, 1), date(2024, 5, 9), date(2024, 5, 23), date(2024, 6, 1),
        date(2024, 6, 17), date(2024, 7, 7), date(2024, 8, 17), date(2024, 9, 16),
        date(2024, 12, 25),
        # by Keppres, besides the SKB: Pemilu 14 Feb and Pilkada serentak 27 Nov 2024
        date(2024, 2, 14), date(2024, 11, 27),
    },
    2025: {
        date(2025, 1, 1), date(2025, 1, 27), date(2025, 1, 29), date(2025, 3, 29),
        date(2025, 3, 31), date(2025, 4, 1), date(2025, 4, 18), date(2025, 4, 20),
        date(2025, 5, 1), date(2025, 5, 12), date(2025, 5, 29), date(2025, 6, 1),
        date(2025, 6, 6), date(2025, 6, 27), date(2025, 8, 17), date(2025, 9, 5),
        date(2025, 12, 25),
    },
    2026: {
        date(2026, 1, 1), date(2026, 1, 16), date(2026, 2, 17), date(2026, 3, 19),
        date(2026, 3, 21), date(2026, 3, 22), date(2026, 4, 3), date(2026, 4, 5),
        date(2026, 5, 1), date(2026, 5, 14), date(2026, 5, 27), date(2026, 5, 31),
        date(2026, 6, 1), date(2026, 6, 16), date(2026, 8, 17), date(2026, 8, 25),
        date(2026, 12, 25),
    },
}


@pytest.mark.parametrize("d", [d for days in CUTI_BERSAMA.values() for d in days])
def test_each_cuti_bersama_is_not_a_working_day(cal: WorkCalendar, d: date) -> None:
    assert not cal.is_working_day(d)
    name = cal.holiday_name(d)
    assert name is not None and name.startswith("Cuti Bersama")


def test_shipped_file_holds_no_duplicate_of_the_library() -> None:
    """The holiday file keeps only the decree's corrections: no [[libur]] date that the
    package (public + government) already has, no [[bukan_libur]] date it lacks."""
    data = load_holiday_file(DEFAULT_HOLIDAY_FILE)
    repeated = sorted(d for d in data.libur if d in package_holidays(d.year))
    assert repeated == [], f"already in the holidays package: {repeated}"
    pointless = sorted(d for d in data.bukan_libur if d not in package_holidays(d.year))
    assert pointless == [], f"removes what the package does not have: {pointless}"
    assert data.tahun_lengkap == {2024, 2025, 2026}
    # 2027 is left unverified until its SKB and the isbat are matched.
    assert not [d for d in data.libur if d.year == 2027]


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_package_and_file_give_the_decree_holidays(cal: WorkCalendar, year: int) -> None:
    got = set(cal.holidays_in_year(year))
    decreed = LIBUR_NASIONAL[year] | set(CUTI_BERSAMA[year])
    assert sorted(got - decreed) == [] and sorted(decreed - got) == []


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_cuti_bersama_come_from_the_library_government_category(year: int) -> None:
    # the same list with the public category alone lacks every cuti bersama: the
    # government category is what brings them
    import holidays

    public = holidays.country_holidays("ID", years=year)
    assert not set(CUTI_BERSAMA[year]) & set(public)
    assert set(CUTI_BERSAMA[year]) <= set(package_holidays(year))
    assert tuple(int(x) for x in holidays.__version__.split(".")[:2]) >= (0, 109)


def test_decree_coverage(cal: WorkCalendar) -> None:
    assert cal.decree_covers(2025) and cal.decree_covers(2026)
    assert not cal.decree_covers(2027)


def test_holiday_names_are_indonesian(cal: WorkCalendar) -> None:
    assert cal.holiday_name(date(2026, 3, 21)) == "Hari Raya Idul Fitri"
    assert cal.holiday_name(date(2025, 12, 25)) == "Hari Raya Natal"
    assert cal.holiday_name(date(2025, 4, 2)) == "Cuti Bersama Hari Raya Idul Fitri"
    assert cal.holiday_name(date(2025, 2, 8)) is None  # plain Saturday
    assert cal.holiday_name(date(2025, 2, 10)) is None  # plain Monday


def test_without_holiday_file_the_library_still_gives_cuti_bersama() -> None:
    bare = WorkCalendar(holiday_file=None)
    assert not bare.is_working_day(date(2025, 4, 2))  # cuti bersama (government category)
    assert not bare.is_working_day(date(2025, 3, 31))  # Idulfitri (public category)
    assert bare.is_working_day(date(2025, 4, 8))
    # an office that works on a cuti bersama says so in config
    assert WorkCalendar(holiday_file=None, extra_workdays=[date(2025, 4, 2)]).is_working_day(
        date(2025, 4, 2))


# --------------------------------------------------------------------------------------
# Idulfitri 2025 and 2026
# --------------------------------------------------------------------------------------


def test_idulfitri_2025_add_one_day(cal: WorkCalendar) -> None:
    # Thu 27 Mar 15:00 is office time. The next working day: Fri 28 Mar cuti Nyepi,
    # 29-30 weekend/Nyepi, 31 Mar-1 Apr Idulfitri, 2-4 Apr cuti, 5-6 weekend, 7 Apr cuti
    # -> Tue 8 Apr, same clock time.
    assert cal.add_working_days(wib(2025, 3, 27, 15), 1) == wib(2025, 4, 8, 15)


def test_idulfitri_2025_start_on_cuti_bersama(cal: WorkCalendar) -> None:
    # Fri 28 Mar 2025 is itself cuti bersama (Nyepi), so 15:00 that day is outside office
    # hours: counting starts at the next opening, Tue 8 Apr 07:30; +1 day = Wed 9 Apr 07:30.
    assert not cal.is_office_open(wib(2025, 3, 28, 15))
    assert cal.next_opening(wib(2025, 3, 28, 15)) == wib(2025, 4, 8, 7, 30)
    assert cal.add_working_days(wib(2025, 3, 28, 15), 1) == wib(2025, 4, 9, 7, 30)


def test_idulfitri_2025_minutes_and_days(cal: WorkCalendar) -> None:
    # Thu 27 Mar 15:30 + 60 min: 30 min until 16:00, the rest from Tue 8 Apr 07:30 -> 08:00.
    assert cal.add_working_minutes(wib(2025, 3, 27, 15, 30), 60) == wib(2025, 4, 8, 8, 0)
    assert cal.first_working_day_after(date(2025, 3, 27)) == date(2025, 4, 8)
    assert cal.working_days_in(date(2025, 3, 24), date(2025, 4, 11)) == [
        date(2025, 3, 24), date(2025, 3, 25), date(2025, 3, 26), date(2025, 3, 27),
        date(2025, 4, 8), date(2025, 4, 9), date(2025, 4, 10), date(2025, 4, 11),
    ]
    # Thu 27 Mar 07:30 -> Wed 9 Apr 07:30: working days 27 Mar and 8 Apr, 2 x 510 min.
    assert cal.working_minutes_between(wib(2025, 3, 27, 7, 30), wib(2025, 4, 9, 7, 30)) == 1020


def test_idulfitri_2026(cal: WorkCalendar) -> None:
    # Tue 17 Mar 2026 10:00 + 1 working day: 18 cuti Nyepi, 19 Nyepi, 20 cuti, 21-22
    # Idulfitri (weekend), 23-24 cuti -> Wed 25 Mar 10:00.
    assert cal.add_working_days(wib(2026, 3, 17, 10), 1) == wib(2026, 3, 25, 10)
    assert cal.working_days_in(date(2026, 3, 16), date(2026, 3, 27)) == [
        date(2026, 3, 16), date(2026, 3, 17),
        date(2026, 3, 25), date(2026, 3, 26), date(2026, 3, 27),
    ]
    # 5 working days from Mon 16 Mar 09:00: 17, 25, 26, 27 Mar, Mon 30 Mar -> 30 Mar 09:00.
    assert cal.add_working_days(wib(2026, 3, 16, 9), 5) == wib(2026, 3, 30, 9)


# --------------------------------------------------------------------------------------
# Christmas and New Year
# --------------------------------------------------------------------------------------


def test_christmas_new_year_2025_2026(cal: WorkCalendar) -> None:
    # Wed 24 Dec 2025 is a working day (no cuti that day in 2025); 25 Natal, 26 cuti,
    # 27-28 weekend; Mon 29 Dec opens again.
    assert cal.is_working_day(date(2025, 12, 24))
    assert cal.add_working_minutes(wib(2025, 12, 24, 15, 30), 60) == wib(2025, 12, 29, 8, 0)
    # Wed 31 Dec + 1 day: Thu 1 Jan 2026 Tahun Baru -> Fri 2 Jan 2026.
    assert cal.add_working_days(wib(2025, 12, 31, 9), 1) == wib(2026, 1, 2, 9)
    # 24 Dec + 3 days = 29, 30, 31 Dec.
    assert cal.add_working_days(wib(2025, 12, 24, 9), 3) == wib(2025, 12, 31, 9)
    # Working days between 24 Dec 07:30 and 2 Jan 07:30: 24, 29, 30, 31 Dec = 4 x 510.
    assert cal.working_minutes_between(
        wib(2025, 12, 24, 7, 30), wib(2026, 1, 2, 7, 30)
    ) == 4 * DAY_MINUTES


def test_christmas_2026(cal: WorkCalendar) -> None:
    # Thu 24 Dec 2026 cuti, Fri 25 Natal, weekend -> Wed 23 Dec + 1 day = Mon 28 Dec.
    assert cal.add_working_days(wib(2026, 12, 23, 12), 1) == wib(2026, 12, 28, 12)
    assert not cal.is_working_day(date(2026, 12, 24))


# --------------------------------------------------------------------------------------
# Minutes near closing time, nights, weekends
# --------------------------------------------------------------------------------------


def test_friday_afternoon_plus_30_minutes_goes_to_monday(cal: WorkCalendar) -> None:
    # Fri 7 Feb 2025 15:45: 15 min until 16:00, the other 15 from Mon 10 Feb 07:30.
    result = cal.add_working_minutes(wib(2025, 2, 7, 15, 45), 30)
    assert result == wib(2025, 2, 10, 7, 45)
    assert format_wib(result) == "Senin, 10 Februari 2025 pukul 07.45 WIB"


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (wib(2025, 2, 11, 15, 50), wib(2025, 2, 11, 15, 55)),
        (wib(2025, 2, 11, 15, 55), wib(2025, 2, 11, 16, 0)),  # lands exactly on closing
        (wib(2025, 2, 11, 15, 58), wib(2025, 2, 12, 7, 33)),  # 2 min Tue + 3 min Wed
        (wib(2025, 2, 11, 16, 0), wib(2025, 2, 12, 7, 35)),  # closed: starts Wed 07:30
        (wib(2025, 2, 11, 22, 0), wib(2025, 2, 12, 7, 35)),  # night
        (wib(2025, 2, 12, 3, 0), wib(2025, 2, 12, 7, 35)),  # small hours
        (wib(2025, 2, 12, 7, 29), wib(2025, 2, 12, 7, 35)),  # one minute before opening
    ],
)
def test_five_minute_steps_near_closing(
    cal: WorkCalendar, start: datetime, expected: datetime
) -> None:
    assert cal.add_working_minutes(start, 5) == expected


def test_weekend_and_zero_minutes(cal: WorkCalendar) -> None:
    # Sat 8 Feb 2025 10:00 + 30 min -> Mon 10 Feb 08:00.
    assert cal.add_working_minutes(wib(2025, 2, 8, 10), 30) == wib(2025, 2, 10, 8, 0)
    # A whole day of minutes from the opening ends at that day's closing.
    assert cal.add_working_minutes(wib(2025, 2, 10, 7, 30), DAY_MINUTES) == wib(2025, 2, 10, 16)
    assert cal.add_working_minutes(wib(2025, 2, 8, 10), 0) == wib(2025, 2, 10, 7, 30)
    assert cal.add_working_minutes(wib(2025, 2, 10, 9, 12), 0) == wib(2025, 2, 10, 9, 12)
    with pytest.raises(ValueError):
        cal.add_working_minutes(wib(2025, 2, 10, 9), -1)


def test_minutes_across_a_holiday_monday(cal: WorkCalendar) -> None:
    # Fri 9 May 2025 15:00 + 120 min: 60 min Fri; Mon 12 May Waisak, Tue 13 May cuti ->
    # remaining 60 from Wed 14 May 07:30 = 08:30.
    assert cal.add_working_minutes(wib(2025, 5, 9, 15), 120) == wib(2025, 5, 14, 8, 30)


def test_other_time_zones_in_results_in_wib(cal: WorkCalendar) -> None:
    # 00:30 UTC = 07:30 WIB, Tue 11 Feb 2025.
    result = cal.add_working_minutes(datetime(2025, 2, 11, 0, 30, tzinfo=UTC), 5)
    assert result == wib(2025, 2, 11, 7, 35)
    assert result.tzinfo == ZoneInfo("Asia/Jakarta")
    # 23:00 UTC Sun 9 Feb = 06:00 WIB Mon 10 Feb: before opening.
    assert cal.next_opening(datetime(2025, 2, 9, 23, tzinfo=UTC)) == wib(2025, 2, 10, 7, 30)


def test_minutes_round_trip(cal: WorkCalendar) -> None:
    start = wib(2025, 3, 26, 14, 17)
    for minutes in (0, 1, 5, 103, 509, 510, 511, 1020, 3000, 7 * DAY_MINUTES + 3):
        end = cal.add_working_minutes(start, minutes)
        assert cal.working_minutes_between(start, end) == minutes


# --------------------------------------------------------------------------------------
# Office hours, openings
# --------------------------------------------------------------------------------------


def test_is_office_open(cal: WorkCalendar) -> None:
    assert cal.is_office_open(wib(2025, 2, 10, 7, 30))
    assert cal.is_office_open(wib(2025, 2, 10, 15, 59, 59))
    assert not cal.is_office_open(wib(2025, 2, 10, 16, 0))
    assert not cal.is_office_open(wib(2025, 2, 10, 7, 29, 59))
    assert not cal.is_office_open(wib(2025, 2, 8, 10))  # Saturday
    assert not cal.is_office_open(wib(2025, 5, 12, 10))  # Waisak


def test_next_opening(cal: WorkCalendar) -> None:
    assert cal.next_opening(wib(2025, 2, 10, 9, 15)) == wib(2025, 2, 10, 9, 15)
    assert cal.next_opening(wib(2025, 2, 10, 7, 0)) == wib(2025, 2, 10, 7, 30)
    assert cal.next_opening(wib(2025, 2, 7, 16, 0)) == wib(2025, 2, 10, 7, 30)  # Fri close
    assert cal.next_opening(wib(2025, 4, 1, 12)) == wib(2025, 4, 8, 7, 30)  # Idulfitri


# --------------------------------------------------------------------------------------
# Working days
# --------------------------------------------------------------------------------------


def test_add_working_days_basic(cal: WorkCalendar) -> None:
    # Fri 7 Feb 2025 10:00 + 1 = Mon 10 Feb 10:00.
    assert cal.add_working_days(wib(2025, 2, 7, 10), 1) == wib(2025, 2, 10, 10)
    # Fri 9 May 2025 10:00 + 1: Mon 12 May Waisak, Tue 13 May cuti -> Wed 14 May 10:00.
    assert cal.add_working_days(wib(2025, 5, 9, 10), 1) == wib(2025, 5, 14, 10)
    # Fri 7 Feb 18:00 is after hours: count from Mon 10 Feb 07:30 -> Tue 11 Feb 07:30.
    assert cal.add_working_days(wib(2025, 2, 7, 18), 1) == wib(2025, 2, 11, 7, 30)
    # Exactly at closing counts as that day: Fri 16:00 + 1 = Mon 16:00.
    assert cal.add_working_days(wib(2025, 2, 7, 16), 1) == wib(2025, 2, 10, 16)
    # Early morning is clamped to the opening: Mon 06:00 + 5 = Mon 17 Feb 07:30.
    assert cal.add_working_days(wib(2025, 2, 10, 6), 5) == wib(2025, 2, 17, 7, 30)
    # Sunday + 0 days = Monday opening.
    assert cal.add_working_days(wib(2025, 2, 9, 12), 0) == wib(2025, 2, 10, 7, 30)
    with pytest.raises(ValueError):
        cal.add_working_days(wib(2025, 2, 10, 9), -1)


def test_sop_five_days_from_step_three(cal: WorkCalendar) -> None:
    # Step 3 (30 min) starting Mon 10 Feb 2025 15:30 ends 16:00; step 4 (5 days) then
    # ends Mon 17 Feb 16:00 (10 Feb + 11, 12, 13, 14, 17).
    end3 = cal.add_working_minutes(wib(2025, 2, 10, 15, 30), 30)
    assert end3 == wib(2025, 2, 10, 16)
    assert cal.add_working_days(end3, 5) == wib(2025, 2, 17, 16)


def test_working_minutes_between_across_weekend(cal: WorkCalendar) -> None:
    # Fri 7 Feb 2025 15:00 -> Mon 10 Feb 08:30: 60 min Friday + 60 min Monday.
    assert cal.working_minutes_between(wib(2025, 2, 7, 15), wib(2025, 2, 10, 8, 30)) == 120
    # A whole week Mon 07:30 -> next Mon 07:30 = 5 x 510.
    assert cal.working_minutes_between(
        wib(2025, 2, 10, 7, 30), wib(2025, 2, 17, 7, 30)
    ) == 5 * DAY_MINUTES
    # Reversed or empty interval -> 0; partial minutes are dropped.
    assert cal.working_minutes_between(wib(2025, 2, 10, 9), wib(2025, 2, 10, 8)) == 0
    assert cal.working_minutes_between(wib(2025, 2, 10, 9), wib(2025, 2, 10, 9)) == 0
    assert cal.working_minutes_between(wib(2025, 2, 10, 9), wib(2025, 2, 10, 9, 0, 59)) == 0
    # Night to night covers exactly one office day.
    assert cal.working_minutes_between(
        wib(2025, 2, 10, 20), wib(2025, 2, 11, 23)
    ) == DAY_MINUTES


def test_last_working_day_morning(cal: WorkCalendar) -> None:
    # Deadline during a working day -> that day's opening.
    assert cal.last_working_day_morning(wib(2025, 4, 8, 10)) == wib(2025, 4, 8, 7, 30)
    assert cal.last_working_day_morning(wib(2025, 2, 10, 16)) == wib(2025, 2, 10, 7, 30)
    # Deadline at the very opening of Tue 8 Apr 2025: the last working day before it is
    # Thu 27 Mar (28 Mar-7 Apr are all off).
    assert cal.last_working_day_morning(wib(2025, 4, 8, 7, 30)) == wib(2025, 3, 27, 7, 30)
    # Deadline on a Saturday -> Friday.
    assert cal.last_working_day_morning(wib(2025, 2, 8, 12)) == wib(2025, 2, 7, 7, 30)


def test_working_days_in_edges(cal: WorkCalendar) -> None:
    assert cal.working_days_in(date(2025, 2, 10), date(2025, 2, 9)) == []
    assert cal.working_days_in(date(2025, 2, 8), date(2025, 2, 9)) == []
    assert cal.working_days_in(date(2025, 2, 10), date(2025, 2, 10)) == [date(2025, 2, 10)]
    assert cal.first_working_day_after(date(2025, 2, 7)) == date(2025, 2, 10)


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


def test_config_extra_holidays() -> None:
    hut = date(2025, 9, 24)  # Wednesday; HUT Kabupaten Lampung Barat
    cal = WorkCalendar(extra_holidays={hut: "HUT Kabupaten Lampung Barat"})
    assert not cal.is_working_day(hut)
    assert cal.holiday_name(hut) == "HUT Kabupaten Lampung Barat"
    # Tue 23 Sep 15:30 + 60: 30 min Tue, Wed off, 30 min Thu 25 Sep -> 08:00.
    assert cal.add_working_minutes(wib(2025, 9, 23, 15, 30), 60) == wib(2025, 9, 25, 8, 0)
    assert cal.add_working_days(wib(2025, 9, 23, 10), 1) == wib(2025, 9, 25, 10)


def test_config_extra_workdays() -> None:
    # The office works on Sat 8 Feb 2025 and on the cuti bersama of Wed 2 Apr 2025.
    cal = WorkCalendar(extra_workdays=[date(2025, 2, 8), date(2025, 4, 2)])
    assert cal.is_working_day(date(2025, 2, 8))
    assert cal.holiday_name(date(2025, 4, 2)) is None
    assert cal.add_working_minutes(wib(2025, 2, 7, 15, 45), 30) == wib(2025, 2, 8, 7, 45)
    assert cal.first_working_day_after(date(2025, 3, 27)) == date(2025, 4, 2)


def test_custom_office_hours_and_workdays() -> None:
    # An office open Mon-Sat 08:00-14:00 (360 min/day).
    cal = WorkCalendar(office_start=time(8), office_end=time(14), workdays=range(6))
    assert cal.add_working_minutes(wib(2025, 2, 7, 13, 45), 30) == wib(2025, 2, 8, 8, 15)
    assert cal.working_minutes_between(wib(2025, 2, 10, 0), wib(2025, 2, 11, 0)) == 360


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="office_end"):
        WorkCalendar(office_start=time(16), office_end=time(7, 30))
    with pytest.raises(ValueError, match="workdays"):
        WorkCalendar(workdays=())
    with pytest.raises(ValueError, match="workdays"):
        WorkCalendar(workdays=(7,))
    with pytest.raises(ValueError, match="extra_holidays"):
        WorkCalendar(extra_holidays={date(2025, 9, 24): ""})
    with pytest.raises(ValueError, match="2025-09-24"):
        WorkCalendar(extra_holidays={date(2025, 9, 24): "X"}, extra_workdays=[date(2025, 9, 24)])


@pytest.mark.parametrize(
    "call",
    [
        lambda c, dt: c.is_office_open(dt),
        lambda c, dt: c.next_opening(dt),
        lambda c, dt: c.add_working_minutes(dt, 5),
        lambda c, dt: c.add_working_days(dt, 1),
        lambda c, dt: c.working_minutes_between(dt, dt + timedelta(hours=1)),
        lambda c, dt: c.last_working_day_morning(dt),
        lambda c, dt: to_wib(dt),
        lambda c, dt: format_wib(dt),
    ],
)
def test_naive_datetimes_are_rejected(cal: WorkCalendar, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="zona waktu"):
        call(cal, datetime(2025, 2, 10, 9, 0))


# --------------------------------------------------------------------------------------
# Holiday file validation and corrections
# --------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "libur.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_correction_removes_a_package_estimate(tmp_path: Path) -> None:
    # The package estimates Idulfitri 1448 H on Wed 10 - Thu 11 Mar 2027. Suppose the
    # decree says 9-10 Mar: remove the 11th, add the 9th.
    path = write(
        tmp_path,
        """
tahun_lengkap = [2027]

[[libur]]
tanggal = 2027-03-09
nama = "Hari Raya Idulfitri 1448 H"
jenis = "libur_nasional"

[[bukan_libur]]
tanggal = 2027-03-11
nama = "Idul Fitri hari kedua (perkiraan paket holidays)"
""",
    )
    cal = WorkCalendar(holiday_file=path)
    assert not cal.is_working_day(date(2027, 3, 9))
    assert not cal.is_working_day(date(2027, 3, 10))
    assert cal.is_working_day(date(2027, 3, 11))
    assert cal.holiday_name(date(2027, 3, 9)) == "Hari Raya Idulfitri 1448 H"
    assert cal.decree_covers(2027)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (  # quoted date
            '[[libur]]\ntanggal = "2025-04-02"\nnama = "Cuti Bersama Idulfitri"\n'
            'jenis = "cuti_bersama"\n',
            r'\[\[libur\]\] ke-1 \("Cuti Bersama Idulfitri"\).*tanggal',
        ),
        (  # date with a clock time
            '[[libur]]\ntanggal = 2025-04-02T08:00:00\nnama = "Cuti X"\n'
            'jenis = "cuti_bersama"\n',
            r'\[\[libur\]\] ke-1 \("Cuti X"\).*tanggal',
        ),
        (  # unknown kind, second entry
            '[[libur]]\ntanggal = 2025-04-02\nnama = "A"\njenis = "cuti_bersama"\n'
            '[[libur]]\ntanggal = 2025-04-03\nnama = "Cuti B"\njenis = "cuti"\n',
            r'\[\[libur\]\] ke-2 \("Cuti B"\) tanggal=2025-04-03.*jenis',
        ),
        (  # typo in a key
            '[[libur]]\ntangal = 2025-04-02\nnama = "Cuti C"\njenis = "cuti_bersama"\n',
            r'ke-1 \("Cuti C"\).*tangal',
        ),
        (  # empty name
            '[[libur]]\ntanggal = 2025-04-02\nnama = " "\njenis = "cuti_bersama"\n',
            r"ke-1 tanggal=2025-04-02.*nama",
        ),
        (  # duplicate date
            '[[libur]]\ntanggal = 2025-04-02\nnama = "A"\njenis = "cuti_bersama"\n'
            '[[libur]]\ntanggal = 2025-04-02\nnama = "B"\njenis = "cuti_bersama"\n',
            r'ke-2 \("B"\).*sudah tercantum sebagai "A"',
        ),
        (  # added and removed at once
            '[[libur]]\ntanggal = 2025-04-02\nnama = "A"\njenis = "cuti_bersama"\n'
            '[[bukan_libur]]\ntanggal = 2025-04-02\nnama = "B"\n',
            r'\[\[bukan_libur\]\] ke-1 \("B"\).*juga tercantum',
        ),
        (  # bad month in the date: a TOML syntax error
            '[[libur]]\ntanggal = 2025-13-02\nnama = "A"\njenis = "cuti_bersama"\n',
            r"bukan TOML yang sah",
        ),
        ('tahun_lengkap = "2025"\n', r"tahun_lengkap"),
        ('libur = 3\n', r"\[\[libur\]\]"),
        ('hari_libur = []\n', r"kunci tidak dikenal hari_libur"),
    ],
)
def test_broken_holiday_file_names_the_entry(
    tmp_path: Path, body: str, expected: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(HolidayFileError, match=expected) as info:
        WorkCalendar(holiday_file=path)
    assert str(path) in str(info.value)


def test_missing_holiday_file(tmp_path: Path) -> None:
    with pytest.raises(HolidayFileError, match="tidak ditemukan"):
        WorkCalendar(holiday_file=tmp_path / "tidak-ada.toml")


# --------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------


def test_format_wib() -> None:
    # 00:30 UTC = 07:30 WIB; 10 Feb 2024 is a Saturday, 12 Feb 2024 a Monday.
    assert format_wib(datetime(2024, 2, 10, 0, 30, tzinfo=UTC)) == (
        "Sabtu, 10 Februari 2024 pukul 07.30 WIB"
    )
    assert format_wib(wib(2024, 2, 12, 7, 30)) == "Senin, 12 Februari 2024 pukul 07.30 WIB"
    assert format_wib(wib(2025, 8, 17, 16, 5)) == "Minggu, 17 Agustus 2025 pukul 16.05 WIB"
    assert to_wib(datetime(2025, 1, 1, 17, tzinfo=UTC)) == wib(2025, 1, 2, 0, 0)
