import subprocess
import sys

from wordfreq import count_words, ranked


def test_count_words():
    c = count_words("The cat and THE hat. 'Quoted' don't")
    assert c["the"] == 2
    assert c["quoted"] == 1
    assert c["don't"] == 1


def test_ranked_ties_alphabetical():
    assert ranked(count_words("b a b a c")) == [("a", 2), ("b", 2), ("c", 1)]


def test_cli_default_output():
    out = subprocess.run([sys.executable, "wordfreq.py", "sample.txt"],
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["5", "the"]
    assert lines[1].split() == ["3", "dog"]
