"""Hidden strbuf tests: the checker. Builds the driver against the workspace's libstrbuf.a as the
artifact (with sanitizers, so a heap overflow or a double free fails its test), runs each test's
operations through it in a fresh process, and checks every result line against a model of
strbuf.h kept here. Writes TAP to /results/tap."""
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, "/hidden")
import artifact  # noqa: E402

DIGITS = "0123456789abcdef0123456789abcdef0123456789"


def pattern(n):
    return "".join(chr(97 + i % 26) for i in range(n))


class Model:
    """What strbuf.h promises. buf is 'null' (sb_init, sb_free, sb_detach), 'alloc' (something
    was appended or room was reserved) or 'any' (only "" was appended: either is allowed)."""

    def __init__(self):
        self.text = ""
        self.buf = "null"
        self.min_cap = 0
        self.kept = []

    def appended(self, s):
        self.text += s
        if s:
            self.buf = "alloc"
        elif self.buf == "null":
            self.buf = "any"
        self.min_cap = max(self.min_cap, len(self.text) + 1)
        return "0"

    def state(self, got):
        length, cap, isnull = (int(x) for x in got.split())
        if length != len(self.text):
            return "len is %d, expected %d" % (length, len(self.text))
        if self.buf == "null" or (self.buf == "any" and isnull):
            return None if (cap, isnull) == (0, 1) else "expected buf NULL and cap 0"
        if isnull:
            return "buf is NULL"
        if cap < self.min_cap:
            return "cap is %d, expected at least %d" % (cap, self.min_cap)
        return None

    def expect(self, op):
        """The expected line for op, or a function of the line returning None or a problem."""
        name, _, arg = op.partition(" ")
        if name == "append":
            return self.appended(arg)
        if name == "append_n":
            k, _, text = arg.partition(" ")
            return self.appended(text[:int(k)])
        if name == "append_pat":
            return self.appended(pattern(int(arg)))
        if name == "appendf_id":
            s, d, c = arg.split(" ")
            return self.appended("%s-%05d-%s" % (s, int(d), c))
        if name == "appendf_rep":
            c, k, d = arg.split(" ")
            return self.appended("%s|%d" % (c * int(k), int(d)))
        if name == "appendf_sum":
            a, b = (int(x) for x in arg.split(" "))
            return self.appended(" %d+%d=%d" % (a, b, a + b))
        if name == "grow":
            self.buf = "alloc"
            self.min_cap = max(self.min_cap, len(self.text) + int(arg) + 1)
            return "0"
        if name == "fill_to_cap":
            def filled(got):
                k = int(got)
                if not 0 <= k < 1 << 20:
                    return "appended %d times" % k
                self.appended(arg * k)
                return None
            return filled
        if name == "state":
            return self.state
        if name == "term":
            if self.buf == "alloc":
                return "0"
            return lambda got: None if got in ("0", "-1") else "no NUL"
        if name == "str":
            return self.text
        if name == "mark":
            return "-"
        if name == "same":
            return "1 1"
        if name == "reset":
            self.text = ""
            return "-"
        if name == "free":
            self.__init__()
            return "-"
        if name == "detach":
            want = "0 %d %s" % (len(self.text), self.text)
            self.kept.append(self.text)
            self.text, self.buf, self.min_cap = "", "null", 0
            return want
        if name == "detached":
            return self.kept[int(arg)]
        raise ValueError("no model for " + name)


def ops_test(*ops):
    def test(driver):
        got, why = artifact.scenario(driver, list(ops))
        if why:
            return why
        model = Model()
        for i, (op, line) in enumerate(zip(ops, got)):
            want = model.expect(op)
            problem = want(line) if callable(want) else (
                None if line == want else "got '%s', expected '%s'" % (line[:200], want[:200]))
            if problem:
                return "operation %d '%s': %s" % (i + 1, op[:60], problem)
        return None
    return test


TESTS = [
    ("small appends", ops_test("append ab", "append_n 2 cdef", "state", "str", "free", "state")),
    ("empty string", ops_test("str", "append ", "str", "state", "free")),
    ("many small appends", ops_test(*["append x"] * 1000, "state", "str", "term")),
    ("appendf short", ops_test("appendf_id id 42 z", "str", "state")),
    ("reset keeps memory", ops_test("append some text", "mark", "reset", "state", "same", "str")),
    ("detach empty buffer", ops_test("detach", "state")),
    # the workspace's own tests (make test), run here against the model
    ("workspace test cases", ops_test("str", "append hello", "append , ", "append world", "str",
                                      "state", "appendf_sum 2 2", "str", "reset", "state", "str",
                                      "free")),
    ("large append", ops_test("append_pat 4999", "state", "str", "append_pat 4999", "state",
                              "term", "str")),
    ("append at exact capacity", ops_test("append x", "fill_to_cap y", "state", "term",
                                          "append_n 42 " + DIGITS, "state", "term", "str")),
    ("grow reserves requested room", ops_test("grow 300", "state", "append abc", "grow 1000",
                                              "state", "str", "grow 5000", "state",
                                              "append_pat 5000", "state", "term")),
    ("appendf longer than 256 bytes", ops_test("append <", "appendf_rep w 700 12345", "state",
                                               "str", "appendf_rep q 5000 -1", "str", "term")),
    ("detach leaves buffer empty", ops_test("append payload", "detach", "state", "append again",
                                            "str", "detached 0", "detach", "detached 1")),
]

if __name__ == "__main__":
    sys.exit(artifact.main("libstrbuf.a", TESTS))
