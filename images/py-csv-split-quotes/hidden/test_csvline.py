# The repository's tests/test_csvline.py, run as the checker against the artifact.
import crucible_artifact

csvline = crucible_artifact.module("csvline")


def test_simple():
    assert csvline.split_line("a,b,c") == ["a", "b", "c"]


def test_newline_dropped():
    assert csvline.split_line("a,b\n") == ["a", "b"]
    assert csvline.split_line("a,b\r\n") == ["a", "b"]


def test_empty_fields():
    assert csvline.split_line(",x,,") == ["", "x", "", ""]


def test_other_separator():
    assert csvline.split_line("a;b;c", sep=";") == ["a", "b", "c"]


def test_strip():
    assert csvline.split_line(" a , b ,c ", strip=True) == ["a", "b", "c"]


def test_parse():
    assert csvline.parse("a,b\n\nc,d\n") == [["a", "b"], ["c", "d"]]
