"""Hidden str_split tests: the checker. Builds the driver against the workspace's libstrutil.a as
the artifact (with sanitizers), runs each test's operations through it in a fresh process, and
compares every result with what Python's str.split and the existing functions' contracts give.
Writes TAP to /results/tap."""
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, "/hidden")
import artifact  # noqa: E402


def hx(s):
    return s.encode("latin-1").hex() or "-"


def parts(ps):
    return " ".join([str(len(ps))] + [hx(p) for p in ps] + ["end"])


def split(text, sep, counted=True):
    op = "%s %s %s" % ("split" if counted else "split_nocount", hx(sep), hx(text))
    return op, parts(text.split(sep))


def trim(text):
    return "trim " + hx(text), "[%s]" % text.strip(" \t\n\v\f\r")


def test(*pairs):
    ops = [op for op, _ in pairs]
    want = [w for _, w in pairs]

    def run(driver):
        got, why = artifact.scenario(driver, ops)
        return why or artifact.compare(ops, got, want)
    return run


TESTS = [
    ("existing functions unchanged", test(trim("\t x \n"),
                                          ("startswith %s %s" % (hx("abc"), hx("ab")), "1"),
                                          ("count_char %s %s" % (hx("X"), hx("aXbXc")), "2"))),
    # the workspace's own tests (make test), run here
    ("workspace test cases", test(trim("  padded text \t\n"), trim("   "),
                                  ("startswith %s %s" % (hx("prefix-rest"), hx("prefix")), "1"),
                                  ("startswith %s %s" % (hx("pre"), hx("prefix")), "0"),
                                  ("count_char %s %s" % (hx(","), hx("a,b,,c")), "3"))),
    ("split simple", test(split("a,bb,ccc", ","))),
    ("split without separator", test(split("hello world", ","))),
    ("split empty string", test(split("", ","))),
    ("split keeps empty fields", test(split(",x,,,y,", ","), split(",x,,", ","))),
    ("split only separators", test(split("::", ":"), split(":", ":"))),
    ("split other separator", test(split("usr/local/bin", "/"), split("a b\tc", " "))),
    ("count may be NULL", test(split("1 2 3 4", " ", counted=False),
                               split("", ";", counted=False))),
    ("input untouched, parts are copies", test(("copies", "k=v;x=y k=v x=y"))),
    ("split long input", test(("split_long 20000", parts(("abc|" * 20000).split("|"))))),
    ("free NULL is a no-op", test(("free_null", "-"))),
]

if __name__ == "__main__":
    sys.exit(artifact.main("libstrutil.a", TESTS))
