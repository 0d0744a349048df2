import pytest

import crucible_artifact

roman = crucible_artifact.module("roman")


def test_to_roman_unchanged():
    assert roman.to_roman(2024) == "MMXXIV"
    assert roman.to_roman(444) == "CDXLIV"
    with pytest.raises(TypeError):
        roman.to_roman("12")


def test_from_roman_simple():
    assert roman.from_roman("I") == 1
    assert roman.from_roman("III") == 3
    assert roman.from_roman("VIII") == 8
    assert roman.from_roman("MDCLXVI") == 1666


def test_from_roman_subtractive():
    assert roman.from_roman("IV") == 4
    assert roman.from_roman("IX") == 9
    assert roman.from_roman("XLII") == 42
    assert roman.from_roman("XCIX") == 99
    assert roman.from_roman("CDXLIV") == 444
    assert roman.from_roman("MCMXCIV") == 1994
    assert roman.from_roman("MMMCMXCIX") == 3999


def test_round_trip():
    for n in range(1, 4000):
        assert roman.from_roman(roman.to_roman(n)) == n


@pytest.mark.parametrize("bad", ["", "IIII", "VV", "IC", "XM", "VX", "IIV", "MMMM", "LXL", "ABC", "X I", "xiv"],
                         ids=["empty", "IIII", "VV", "IC", "XM", "VX", "IIV", "MMMM", "LXL", "ABC", "space", "lower"])
def test_invalid_raises(bad):
    with pytest.raises(ValueError):
        roman.from_roman(bad)


def test_non_string_raises_type_error():
    with pytest.raises(TypeError):
        roman.from_roman(12)
