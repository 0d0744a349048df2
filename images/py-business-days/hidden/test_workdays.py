# The workspace's tests/test_workdays.py, run as the checker against the artifact.
from datetime import date

import crucible_artifact

workdays = crucible_artifact.module("workdays")

MON = date(2024, 3, 4)


def test_monday_to_sunday():
    assert workdays.business_days(MON, date(2024, 3, 10)) == 5


def test_two_weeks_from_saturday():
    assert workdays.business_days(date(2024, 3, 2), date(2024, 3, 16)) == 10


def test_same_weekend_day():
    assert workdays.business_days(date(2024, 3, 9), date(2024, 3, 9)) == 0
