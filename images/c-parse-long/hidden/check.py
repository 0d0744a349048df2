"""Hidden parse_long tests: the checker. Builds the driver against the workspace's libparse.a
as the artifact, runs each test's inputs through it in a fresh process, and compares every
result with a model of parse.h computed here. Writes TAP to /results/tap."""
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, "/hidden")
import artifact  # noqa: E402

LONG_MAX = 2**63 - 1
LONG_MIN = -2**63


def model(s):
    """parse.h: optional leading spaces, an optional sign, decimal digits, nothing after them;
    a value outside long is an error; on error the output keeps its value (5)."""
    m = re.fullmatch(r"[ \t\v\f\r]*([+-]?[0-9]+)", s)
    if not m or not LONG_MIN <= int(m.group(1)) <= LONG_MAX:
        return "-1 5"
    return "0 %d" % int(m.group(1))


def cases(*inputs):
    def test(driver):
        got, why = artifact.scenario(driver, list(inputs))
        return why or artifact.compare(inputs, got, [model(s) for s in inputs])
    return test


TESTS = [
    ("plain number", cases("12345", "42", "0", "007")),
    ("spaces and signs", cases("  +7", "-0", "  -17", "+123")),
    ("empty input rejected", cases("", "   ", "-", "+", "abc")),
    ("trailing garbage rejected", cases("12abc", "7x", "-3-")),
    ("trailing space or dot rejected", cases("42 ", "4 2", "1.5", "10.")),
    ("overflow rejected", cases("99999999999999999999", str(LONG_MAX + 1), "+" + str(2**64))),
    ("underflow rejected", cases("-99999999999999999999", str(LONG_MIN - 1))),
    ("limits accepted", cases(str(LONG_MAX), str(LONG_MIN), "+" + str(LONG_MAX))),
    ("hex rejected", cases("0x1A", "0X10", "1e5")),
    # the workspace's own tests (make test), run here against the model
    ("workspace test cases", cases("42", "  -17", "", "abc")),
]

if __name__ == "__main__":
    sys.exit(artifact.main("libparse.a", TESTS))
