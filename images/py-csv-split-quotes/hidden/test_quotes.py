import pytest

import crucible_artifact

csvline = crucible_artifact.module("csvline")


def split_line(*args, **kwargs):
    return csvline.split_line(*args, **kwargs)


def parse(*args, **kwargs):
    return csvline.parse(*args, **kwargs)


def test_plain_fields_unchanged():
    assert split_line("a,b,c") == ["a", "b", "c"]
    assert split_line(",x,,") == ["", "x", "", ""]
    assert split_line("a;b", sep=";") == ["a", "b"]
    assert split_line(" a , b ", strip=True) == ["a", "b"]


def test_quoted_separator():
    assert split_line('1,"Smith, John",NY') == ["1", "Smith, John", "NY"]
    assert split_line('"a;b";c', sep=";") == ["a;b", "c"]


def test_escaped_quote():
    assert split_line('"He said ""hi""",2') == ['He said "hi"', "2"]
    assert split_line('""""') == ['"']


def test_empty_quoted_fields():
    assert split_line('"",x,""') == ["", "x", ""]


def test_quoted_last_field_with_newline():
    assert split_line('a,"b,c"\r\n') == ["a", "b,c"]


def test_strip_keeps_quoted_content():
    assert split_line('"  x  ", y ', strip=True) == ["  x  ", "y"]


def test_unterminated_quote_raises():
    with pytest.raises(ValueError):
        split_line('a,"bc')


def test_parse_quoted():
    text = 'id,name\n1,"Doe, Jane"\n2,"O""Brien"\n'
    assert parse(text) == [["id", "name"], ["1", "Doe, Jane"], ["2", 'O"Brien']]
