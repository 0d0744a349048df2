import pytest

import crucible_artifact

calc = crucible_artifact.module("calc")


def ev(s):
    return calc.evaluate(s)


def test_basic_left_assoc():
    assert ev("10 - 4 - 3") == 3
    assert ev("100 / 10 / 5") == pytest.approx(2)
    assert ev("1+2+3") == 6


def test_bad_input_still_rejected():
    for bad in ["", "   ", "2 $ 3", "abc"]:
        with pytest.raises(calc.CalcError):
            ev(bad)


def test_precedence():
    assert ev("2 + 3 * 4") == 14
    assert ev("2 * 3 + 4 * 5") == 26
    assert ev("10 - 6 / 3") == pytest.approx(8)
    assert ev("1 + 2 * 3 - 4 / 2") == pytest.approx(5)


def test_parentheses():
    assert ev("(2 + 3) * 4") == 20
    assert ev("2 * (3 + (4 - 1)) / 3") == pytest.approx(4)
    assert ev("((7))") == 7


def test_unary_minus_and_plus():
    assert ev("-3 + 5") == 2
    assert ev("2 * -3") == -6
    assert ev("-(2 + 3)") == -5
    assert ev("--4") == 4
    assert ev("+4 - +1") == 3


def test_power():
    assert ev("2 ^ 10") == 1024
    assert ev("2 ^ 3 ^ 2") == 512
    assert ev("2 * 3 ^ 2") == 18
    assert ev("-2 ^ 2") == -4
    assert ev("(-2) ^ 2") == 4
    assert ev("2 ^ -1") == pytest.approx(0.5)


def test_syntax_errors():
    for bad in ["1 +", "* 2", "(1 + 2", "1 + 2)", "()", "2 (3)", "1 2", "3 * / 4"]:
        with pytest.raises(calc.CalcError):
            ev(bad)


def test_division_by_zero():
    with pytest.raises(calc.CalcError):
        ev("1 / 0")
    with pytest.raises(calc.CalcError):
        ev("5 / (2 - 2)")


def test_long_expression():
    expr = " + ".join(["(1 + 2 * 3)"] * 200)
    assert ev(expr) == 1400
