# The workspace's tests/test_roman.py, run as the checker against the artifact.
import pytest

import crucible_artifact

roman = crucible_artifact.module("roman")


@pytest.mark.parametrize("n, expected", [
    (1, "I"), (4, "IV"), (9, "IX"), (14, "XIV"), (40, "XL"),
    (90, "XC"), (400, "CD"), (1994, "MCMXCIV"), (3999, "MMMCMXCIX"),
])
def test_to_roman(n, expected):
    assert roman.to_roman(n) == expected


def test_to_roman_range():
    with pytest.raises(ValueError):
        roman.to_roman(0)
    with pytest.raises(ValueError):
        roman.to_roman(4000)
