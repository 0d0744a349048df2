"""wordfreq: print how often each word occurs in text files.

usage: python3 wordfreq.py [FILE ...]     (reads standard input without FILE)
"""

import re
import sys
from collections import Counter

WORD = re.compile(r"[A-Za-z']+")


def count_words(text):
    """Counter of lower-cased words; apostrophes at either end are dropped."""
    counts = Counter()
    for w in WORD.findall(text):
        w = w.strip("'").lower()
        if w:
            counts[w] += 1
    return counts


def ranked(counts):
    """(word, count) pairs, most frequent first, ties alphabetically."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def main(argv):
    files = argv[1:]
    counts = Counter()
    if not files:
        counts.update(count_words(sys.stdin.read()))
    for name in files:
        with open(name, encoding="utf-8") as f:
            counts.update(count_words(f.read()))
    for word, n in ranked(counts):
        print("%7d %s" % (n, word))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
