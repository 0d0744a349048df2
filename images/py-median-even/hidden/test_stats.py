# The workspace's tests/test_stats.py, run as the checker against the artifact.
import pytest

import crucible_artifact

stats = crucible_artifact.module("stats")


def test_mean():
    assert stats.mean([1, 2, 3, 4]) == 2.5


def test_mean_empty():
    with pytest.raises(ValueError):
        stats.mean([])


def test_median_odd():
    assert stats.median([5, 1, 3]) == 3


def test_mode():
    assert stats.mode([1, 2, 2, 3, 3]) == 2
