"""Run topwords.sh on several inputs; print the fraction of cases that pass."""
import os
import re
import subprocess
import tempfile
from collections import Counter


def expected(text, n):
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", text)]
    ranked = sorted(Counter(words).items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return "".join("%d %s\n" % (c, w) for w, c in ranked)


def run(args):
    env = {"PATH": "/usr/bin:/bin"}
    return subprocess.run(["bash", "/workspace/topwords.sh", *args], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=30)


d = tempfile.mkdtemp()
texts = {
    "speech": open("/hidden/speech.txt").read(),
    "mixed": "Apple apple APPLE banana, Banana; cherry! apple's don't\n" * 3 + "zebra yak " * 2 + "x1y2z3\n",
    "many": " ".join("w%s" % chr(97 + (i * 7) % 26) * 1 + ("q" * (i % 3)) for i in range(400)) + "\n",
    "ties": "delta charlie bravo alpha\ndelta charlie bravo alpha\n\n\techo\n",
    "tabs": "one\ttwo\t\tthree\n  one   two\r\none\n",
}
cases = [("speech", []), ("speech", ["3"]), ("mixed", ["5"]), ("many", ["12"]), ("ties", ["4"]),
         ("ties", ["100"]), ("tabs", []), ("mixed", ["1"])]
passed = 0
total = 0
for name, extra in cases:
    path = os.path.join(d, name + ".txt")
    with open(path, "w") as f:
        f.write(texts[name])
    n = int(extra[0]) if extra else 10
    r = run([path] + extra)
    total += 1
    if r.returncode == 0 and r.stdout == expected(texts[name], n):
        passed += 1
    else:
        print("# case %s %s failed (rc=%d)" % (name, extra, r.returncode))

# error handling
total += 1
r = run([os.path.join(d, "missing.txt")])
if r.returncode == 1 and r.stdout == "" and r.stderr.strip():
    passed += 1
else:
    print("# missing file case failed (rc=%d)" % r.returncode)
total += 1
bad = [run([os.path.join(d, "speech.txt"), x]).returncode for x in ("0", "-2", "ten")] + [run([]).returncode]
if bad == [2, 2, 2, 2]:
    passed += 1
else:
    print("# usage error cases failed: %r" % bad)

print(passed / total)
