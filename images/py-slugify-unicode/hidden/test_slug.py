# The workspace's tests/test_slug.py, run as the checker against the artifact.
import crucible_artifact

slug = crucible_artifact.module("slug")


def test_basic():
    assert slug.slugify("Hello World") == "hello-world"


def test_punctuation_and_spaces():
    assert slug.slugify("  Ten tips -- for  better sleep!! ") == "ten-tips-for-better-sleep"


def test_digits():
    assert slug.slugify("Top 10 of 2024") == "top-10-of-2024"
