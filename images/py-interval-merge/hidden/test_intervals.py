# The repository's tests/test_intervals.py, run as the checker against the artifact.
import crucible_artifact

intervals = crucible_artifact.module("intervals")


def test_disjoint():
    assert intervals.merge([(1, 2), (4, 6)]) == [(1, 2), (4, 6)]


def test_overlapping():
    assert intervals.merge([(1, 4), (2, 6), (8, 9)]) == [(1, 6), (8, 9)]


def test_total_length():
    assert intervals.total_length([(0, 2), (1, 3), (10, 11)]) == 4
