import pytest

from calc import CalcError, evaluate


def test_addition():
    assert evaluate("1 + 2") == 3


def test_chain_left_to_right():
    assert evaluate("10 - 4 - 3") == 3


def test_decimals():
    assert evaluate("1.5 + 2.25") == pytest.approx(3.75)


def test_division():
    assert evaluate("7 / 2") == pytest.approx(3.5)


def test_bad_character():
    with pytest.raises(CalcError):
        evaluate("2 $ 3")


def test_empty():
    with pytest.raises(CalcError):
        evaluate("   ")
