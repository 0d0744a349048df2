# The workspace's tests/test_wordfreq.py, run as the checker against the artifact.
import sys

import crucible_artifact

wordfreq = crucible_artifact.module("wordfreq")


def test_count_words():
    c = wordfreq.count_words("The cat and THE hat. 'Quoted' don't")
    assert c["the"] == 2
    assert c["quoted"] == 1
    assert c["don't"] == 1


def test_ranked_ties_alphabetical():
    counts = crucible_artifact.keep(wordfreq.count_words, "b a b a c")
    assert wordfreq.ranked(counts) == [("a", 2), ("b", 2), ("c", 1)]


def test_cli_default_output():
    r = crucible_artifact.run([sys.executable, "wordfreq.py", "sample.txt"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["5", "the"]
    assert lines[1].split() == ["3", "dog"]
