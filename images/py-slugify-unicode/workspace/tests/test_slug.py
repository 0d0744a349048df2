from slug import slugify


def test_basic():
    assert slugify("Hello World") == "hello-world"


def test_punctuation_and_spaces():
    assert slugify("  Ten tips -- for  better sleep!! ") == "ten-tips-for-better-sleep"


def test_digits():
    assert slugify("Top 10 of 2024") == "top-10-of-2024"
