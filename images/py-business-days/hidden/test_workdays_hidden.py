from datetime import date, timedelta

import pytest

import crucible_artifact

workdays = crucible_artifact.module("workdays")


def business_days(*args):
    return workdays.business_days(*args)


MON = date(2024, 3, 4)
FRI = date(2024, 3, 8)
SAT = date(2024, 3, 9)


def brute(start, end, holidays=()):
    sign = 1
    if end < start:
        start, end, sign = end, start, -1
    n = 0
    d = start
    while d < end:
        if d.weekday() < 5 and d not in holidays:
            n += 1
        d += timedelta(days=1)
    return sign * n


def test_week_from_monday_to_sunday():
    assert business_days(MON, date(2024, 3, 10)) == 5


def test_end_is_exclusive():
    assert business_days(MON, date(2024, 3, 6)) == 2
    assert business_days(MON, MON) == 0
    assert business_days(MON, MON + timedelta(days=14)) == 10


def test_holidays_on_weekdays():
    hol = {date(2024, 3, 5), date(2024, 3, 12)}
    assert business_days(MON, date(2024, 3, 18), hol) == 8


def test_holidays_on_weekend_or_outside_ignored():
    hol = [SAT, date(2024, 3, 10), date(2024, 3, 11), date(2024, 2, 1)]
    # 2024-03-11 is the (exclusive) end, 2024-02-01 is before the range
    assert business_days(MON, date(2024, 3, 11), hol) == 5


def test_duplicate_holidays_counted_once():
    assert business_days(MON, SAT, [FRI, FRI]) == 4


def test_reversed_range_is_negative():
    assert business_days(date(2024, 3, 18), MON) == -10
    assert business_days(FRI, MON, [MON]) == -3


def test_matches_brute_force():
    hol = {date(2024, 3, 29), date(2024, 4, 1), date(2024, 5, 1), date(2024, 4, 6)}
    base = date(2024, 3, 1)
    for i in range(0, 40, 3):
        for j in range(0, 80, 7):
            a, b = base + timedelta(days=i), base + timedelta(days=j)
            assert business_days(a, b, hol) == brute(a, b, hol), (a, b)


def test_add_zero_and_one():
    assert workdays.add_business_days(MON, 0) == MON
    assert workdays.add_business_days(SAT, 0) == SAT
    assert workdays.add_business_days(FRI, 1) == date(2024, 3, 11)
    assert workdays.add_business_days(SAT, 1) == date(2024, 3, 11)


def test_add_with_holidays():
    hol = [date(2024, 3, 11), date(2024, 3, 12)]
    assert workdays.add_business_days(FRI, 1, hol) == date(2024, 3, 13)
    assert workdays.add_business_days(MON, 10, hol) == date(2024, 3, 20)


def test_add_negative_raises():
    with pytest.raises(ValueError):
        workdays.add_business_days(MON, -1)
