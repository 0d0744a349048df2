"""Run topwords.sh on several inputs; print the fraction of cases that pass.

The checker: it runs as uid 0 and never runs workspace code itself. topwords.sh runs only as the
artifact (no capabilities: it cannot read /hidden, trace, signal or write the memory of this
process), on inputs in a folder it may read but not change, with its stdout and stderr captured
through pipes and compared here with the expected output. The score on the last line of this
process's stdout is the only result, and the artifact has no way to write there."""
import os
import re
import sys
from collections import Counter

sys.dont_write_bytecode = True
sys.path.insert(0, "/hidden")
import artifact  # noqa: E402


def expected(text, n):
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", text)]
    ranked = sorted(Counter(words).items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return "".join("%d %s\n" % (c, w) for w, c in ranked).encode()


def run(args):
    return artifact.run(["bash", "/workspace/topwords.sh", *args], timeout=20,
                        env={"PATH": "/usr/bin:/bin"})


d = artifact.checker_folder()
texts = {
    "speech": open("/hidden/speech.txt").read(),
    "mixed": ("Apple apple APPLE banana, Banana; cherry! apple's don't\n" * 3 + "zebra yak " * 2
              + "x1y2z3\n"),
    "many": " ".join("w%s" % chr(97 + (i * 7) % 26) * 1 + ("q" * (i % 3))
                     for i in range(400)) + "\n",
    "ties": "delta charlie bravo alpha\ndelta charlie bravo alpha\n\n\techo\n",
    "tabs": "one\ttwo\t\tthree\n  one   two\r\none\n",
}
for name, text in texts.items():
    path = os.path.join(d, name + ".txt")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
cases = [("speech", []), ("speech", ["3"]), ("mixed", ["5"]), ("many", ["12"]), ("ties", ["4"]),
         ("ties", ["100"]), ("tabs", []), ("mixed", ["1"])]
passed = 0
total = 0
for name, extra in cases:
    n = int(extra[0]) if extra else 10
    r = run([os.path.join(d, name + ".txt")] + extra)
    total += 1
    if r.status == 0 and not r.timed_out and r.out == expected(texts[name], n):
        passed += 1
    else:
        print("# case %s %s failed (%s)" % (name, extra, r.why()))

# error handling
total += 1
r = run([os.path.join(d, "missing.txt")])
if r.status == 1 and r.out == b"" and r.err.strip():
    passed += 1
else:
    print("# missing file case failed (%s)" % r.why())
total += 1
bad = [run([os.path.join(d, "speech.txt"), x]).status for x in ("0", "-2", "ten")]
bad.append(run([]).status)
if bad == [2, 2, 2, 2]:
    passed += 1
else:
    print("# usage error cases failed: exit statuses %r" % bad)

print(passed / total)
