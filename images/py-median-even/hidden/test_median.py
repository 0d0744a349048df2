import pytest

from stats import median


def test_odd():
    assert median([7, 1, 4]) == 4
    assert median([3, 9, 1, 5, 7]) == 5


def test_single():
    assert median([42]) == 42


def test_empty_raises():
    with pytest.raises(ValueError):
        median([])


def test_even():
    assert median([1, 2, 3, 4]) == 2.5
    assert median([10, 20]) == 15


def test_even_unsorted():
    assert median([8, 2, 6, 4]) == 5
    assert median([-3, 3]) == 0


def test_input_not_modified():
    data = [4, 1, 3, 2]
    median(data)
    assert data == [4, 1, 3, 2]
