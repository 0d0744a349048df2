# The workspace's tests/test_calc.py, run as the checker against the artifact.
import pytest

import crucible_artifact

calc = crucible_artifact.module("calc")


def test_addition():
    assert calc.evaluate("1 + 2") == 3


def test_chain_left_to_right():
    assert calc.evaluate("10 - 4 - 3") == 3


def test_decimals():
    assert calc.evaluate("1.5 + 2.25") == pytest.approx(3.75)


def test_division():
    assert calc.evaluate("7 / 2") == pytest.approx(3.5)


def test_bad_character():
    with pytest.raises(calc.CalcError):
        calc.evaluate("2 $ 3")


def test_empty():
    with pytest.raises(calc.CalcError):
        calc.evaluate("   ")
