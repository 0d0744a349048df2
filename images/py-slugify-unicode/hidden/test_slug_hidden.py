import crucible_artifact

slug = crucible_artifact.module("slug")


def slugify(title):
    return slug.slugify(title)


def test_ascii_titles():
    assert slugify("Hello, World") == "hello-world"
    assert slugify("--Already-a-slug--") == "already-a-slug"
    assert slugify("Version 2.0 released") == "version-2-0-released"


def test_empty():
    assert slugify("") == ""
    assert slugify("!!!") == ""


def test_accents_transliterated():
    assert slugify("Crème Brûlée") == "creme-brulee"
    assert slugify("Ångström über Café") == "angstrom-uber-cafe"
    assert slugify("São Paulo Niño") == "sao-paulo-nino"


def test_apostrophes_dropped():
    assert slugify("Don't Stop") == "dont-stop"
    assert slugify("Rock ’n’ Roll") == "rock-n-roll"
    assert slugify("The Cat's Toys") == "the-cats-toys"


def test_non_latin_dropped():
    assert slugify("Tokyo 東京 guide") == "tokyo-guide"
