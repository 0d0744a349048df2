"""Small descriptive statistics helpers."""


def mean(values):
    """Arithmetic mean of a non-empty sequence of numbers."""
    values = list(values)
    if not values:
        raise ValueError("mean() of an empty sequence")
    return sum(values) / len(values)


def median(values):
    """Median of a non-empty sequence of numbers.

    For an odd number of values this is the middle value of the sorted data;
    for an even number it is the mean of the two middle values.
    """
    s = sorted(values)
    n = len(s)
    if n == 0:
        raise ValueError("median() of an empty sequence")
    return s[n // 2]


def mode(values):
    """Most common value; ties go to the value seen first."""
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    if not counts:
        raise ValueError("mode() of an empty sequence")
    best = max(counts.values())
    for v in values:
        if counts[v] == best:
            return v
