"""URL slugs for article titles."""

import re

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(title):
    """Turn a title into a lower-case ASCII slug: words joined by single hyphens."""
    text = title.lower()
    text = _NON_ALNUM.sub("-", text)
    return text.strip("-")
