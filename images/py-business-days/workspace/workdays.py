"""Business-day arithmetic (Monday to Friday, minus holidays)."""

from datetime import timedelta


def business_days(start, end, holidays=()):
    """Number of business days d with start <= d < end.

    A business day is a Monday..Friday that is not in holidays. If end is
    before start the result is negative: business_days(a, b) == -business_days(b, a).
    """
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    for i in range(rest + 1):
        d = start + timedelta(days=weeks * 7 + i)
        if d.weekday() < 5:
            count += 1
    count -= len([h for h in holidays if start <= h <= end])
    return count


def add_business_days(start, n, holidays=()):
    """Return the n-th business day after start (start itself for n == 0)."""
    raise NotImplementedError
