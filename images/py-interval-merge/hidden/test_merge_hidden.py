import pytest

import crucible_artifact

intervals = crucible_artifact.module("intervals")


def merge(*args):
    return intervals.merge(*args)


def total_length(*args):
    return intervals.total_length(*args)


def test_disjoint_sorted():
    assert merge([(1, 2), (4, 6), (9, 12)]) == [(1, 2), (4, 6), (9, 12)]


def test_simple_overlap():
    assert merge([(1, 4), (2, 6)]) == [(1, 6)]


def test_empty():
    assert merge([]) == []


def test_unsorted_input():
    assert merge([(8, 9), (1, 4), (2, 6)]) == [(1, 6), (8, 9)]
    assert merge([(5, 7), (1, 2)]) == [(1, 2), (5, 7)]


def test_touching_intervals_merge():
    assert merge([(1, 3), (3, 5)]) == [(1, 5)]
    assert merge([(0, 1), (1, 2), (2, 3)]) == [(0, 3)]


def test_contained_interval():
    assert merge([(1, 10), (2, 3)]) == [(1, 10)]
    assert merge([(1, 10), (2, 3), (4, 12)]) == [(1, 12)]


def test_floats_and_points():
    assert merge([(0.5, 1.5), (1.25, 2.0), (3, 3)]) == [(0.5, 2.0), (3, 3)]


def test_input_not_modified():
    data = [(5, 6), (1, 2)]
    merge(data)
    assert data == [(5, 6), (1, 2)]


def test_reversed_interval_raises():
    with pytest.raises(ValueError):
        merge([(1, 2), (5, 4)])


def test_total_length_unsorted_contained():
    assert total_length([(10, 11), (0, 10), (2, 3)]) == 11
