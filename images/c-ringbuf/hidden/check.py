"""Hidden ring buffer tests: the checker. Builds the driver against the workspace's libringbuf.a
as the artifact (with sanitizers, so reading past the storage fails its test), runs each test's
operations through it in a fresh process, and compares every result with a FIFO model of
ringbuf.h kept here. Writes TAP to /results/tap."""
import random
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, "/hidden")
import artifact  # noqa: E402


class Model:
    def __init__(self):
        self.cap = None
        self.data = b""

    def expect(self, op):
        name, _, arg = op.partition(" ")
        if name == "new":
            self.cap = int(arg) or None
            self.data = b""
            return "1" if self.cap else "0"
        if name == "free":
            self.cap = None
            return "-"
        if self.cap is None:
            return "no buffer"
        if name == "cap":
            return str(self.cap)
        if name == "len":
            return str(len(self.data))
        if name == "space":
            return str(self.cap - len(self.data))
        if name == "push":
            src = bytes.fromhex(arg)
            n = min(len(src), self.cap - len(self.data))
            self.data += src[:n]
            return str(n)
        if name in ("pop", "peek"):
            out = self.data[:int(arg)]
            if name == "pop":
                self.data = self.data[len(out):]
            return "%d %s" % (len(out), out.hex() or "-")
        raise ValueError("no model for " + name)


def push(b):
    return "push " + b.hex()


def ops_test(*ops):
    def test(driver):
        got, why = artifact.scenario(driver, list(ops))
        if why:
            return why
        model = Model()
        return artifact.compare(ops, got, [model.expect(op) for op in ops])
    return test


def stream(cap, total, seed):
    """Pseudo-random pushes and pops of up to cap + 2 bytes, with peeks, until total bytes went
    through; every result is checked against the model."""
    rng = random.Random(seed)
    ops = ["new %d" % cap]
    produced = 0
    while produced < total:
        k = rng.randrange(cap + 3)
        ops.append(push(bytes((produced + i) * 31 % 256 for i in range(k))))
        produced += k
        ops += ["len", "peek %d" % rng.randrange(cap + 3), "pop %d" % rng.randrange(cap + 3),
                "space"]
    ops += ["pop %d" % (cap + 1), "len"]
    return ops


TESTS = [
    ("basic", ops_test("new 4", "cap", "len", "space", "pop 4", push(b"ab"), "len", "space",
                       "pop 1", "len")),
    ("new with capacity 0 fails", ops_test("new 0", "new 3", "cap")),
    ("fill to capacity", ops_test("new 4", push(b"wxyz"), "len", "space", push(b"!"), "pop 4",
                                  "len", "space", push(b"abcd"), push(b"e"), "peek 4", "len")),
    ("push truncates", ops_test("new 5", push(b"abcdefgh"), "len", "pop 8", "len")),
    ("capacity one", ops_test("new 1", *[op for i in range(10) for op in
                                         (push(bytes([i])), "len", push(bytes([i])), "pop 1",
                                          "len")])),
    ("peek wraps around", ops_test("new 6", push(b"1234"), "pop 3", push(b"56789"), "peek 6",
                                   "len", "peek 2", "pop 6", "len")),
    ("peek past the end of the storage", ops_test("new 8", push(b"abcdef"), "pop 5",
                                                  push(b"ghijkl"), "peek 7", "peek 8", "len")),
    ("stream against a model", ops_test(*stream(7, 20000, 12345))),
    # the workspace's own tests (make check), run here against the model
    ("workspace test cases", ops_test("new 8", "cap", "len", push(b"abc"), "len", "pop 2",
                                      push(b"defgh"), "pop 8", "len", "new 0")),
]

if __name__ == "__main__":
    sys.exit(artifact.main("libringbuf.a", TESTS))
