"""Conversion between integers and Roman numerals (1..3999)."""

_VALUES = [
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"),
    (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
    (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
]


def to_roman(n):
    """Return the canonical Roman numeral for n, 1 <= n <= 3999."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError("to_roman() expects an int")
    if not 1 <= n <= 3999:
        raise ValueError("to_roman() argument out of range 1..3999")
    out = []
    for value, numeral in _VALUES:
        while n >= value:
            out.append(numeral)
            n -= value
    return "".join(out)


def from_roman(s):
    """Return the integer value of the canonical Roman numeral s."""
    raise NotImplementedError("from_roman")
