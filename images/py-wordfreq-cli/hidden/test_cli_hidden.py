import json
import os
import sys

import crucible_artifact

TEXT = "apple banana apple cherry banana apple kiwi fig fig fig fig date\n"
TEXT2 = "Apple pie; a fig. An apple!\n"


def run(*args, stdin=None):
    # the program runs as the artifact, its output comes back as text
    return crucible_artifact.run([sys.executable, "wordfreq.py", *args], input=stdin)


def files():
    d = crucible_artifact.shared_dir(prefix="wf")
    p1, p2 = os.path.join(d, "one.txt"), os.path.join(d, "two.txt")
    with open(p1, "w") as f:
        f.write(TEXT)
    with open(p2, "w") as f:
        f.write(TEXT2)
    return p1, p2


def pairs(out):
    return [(l.split()[1], int(l.split()[0])) for l in out.splitlines() if l.strip()]


def test_default_output_unchanged():
    p1, p2 = files()
    r = run(p1, p2)
    assert r.returncode == 0
    assert pairs(r.stdout) == [("apple", 5), ("fig", 5), ("banana", 2), ("a", 1), ("an", 1),
                               ("cherry", 1), ("date", 1), ("kiwi", 1), ("pie", 1)]
    assert r.stdout.splitlines()[0] == "      5 apple"


def test_stdin():
    r = run(stdin="b a b\n")
    assert r.returncode == 0
    assert pairs(r.stdout) == [("b", 2), ("a", 1)]


def test_top():
    p1, _ = files()
    r = run("--top", "2", p1)
    assert r.returncode == 0, r.stderr
    assert pairs(r.stdout) == [("fig", 4), ("apple", 3)]
    r = run(p1, "--top", "100")
    assert r.returncode == 0, r.stderr
    assert len(pairs(r.stdout)) == 6


def test_top_invalid():
    p1, _ = files()
    for bad in ("0", "-3", "x"):
        r = run("--top", bad, p1)
        assert r.returncode == 2, (bad, r.returncode)
        assert r.stdout == ""


def test_min_length():
    p1, p2 = files()
    r = run("--min-length", "5", p1, p2)
    assert r.returncode == 0, r.stderr
    assert pairs(r.stdout) == [("apple", 5), ("banana", 2), ("cherry", 1)]


def test_json():
    p1, p2 = files()
    r = run("--json", "--top", "3", "--min-length", "3", p1, p2)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc == {"total_words": 16,
                   "words": [{"word": "apple", "count": 5}, {"word": "fig", "count": 5},
                             {"word": "banana", "count": 2}]}


def test_missing_file():
    p1, _ = files()
    r = run(p1, "/nonexistent/nope.txt")
    assert r.returncode == 1
    assert r.stderr.startswith("wordfreq: ")
    assert "nope.txt" in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stdout == ""
