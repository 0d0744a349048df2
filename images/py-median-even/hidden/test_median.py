import pytest

import crucible_artifact

stats = crucible_artifact.module("stats")


def test_odd():
    assert stats.median([7, 1, 4]) == 4
    assert stats.median([3, 9, 1, 5, 7]) == 5


def test_single():
    assert stats.median([42]) == 42


def test_empty_raises():
    with pytest.raises(ValueError):
        stats.median([])


def test_even():
    assert stats.median([1, 2, 3, 4]) == 2.5
    assert stats.median([10, 20]) == 15


def test_even_unsorted():
    assert stats.median([8, 2, 6, 4]) == 5
    assert stats.median([-3, 3]) == 0


def test_input_not_modified():
    data = [4, 1, 3, 2]
    stats.median(data)
    assert data == [4, 1, 3, 2]
