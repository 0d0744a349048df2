"""Hidden hashmap tests: the checker. Builds the driver against the workspace's libhashmap.a as
the artifact (with sanitizers), runs each test's operations through it in a fresh process with a
time limit (an endless probe loop fails only its test), and compares every result with a Python
dict. Writes TAP to /results/tap."""
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, "/hidden")
import artifact  # noqa: E402


def expected(ops):
    d = {}
    out = []
    for op in ops:
        name, _, rest = op.partition(" ")
        key, _, val = rest[1:].partition(" ")
        if name == "put":
            d[key] = int(val)
            out.append("0")
        elif name == "get":
            out.append("1 %d" % d[key] if key in d else "0")
        elif name == "has":
            out.append("1" if key in d else "0")
        elif name == "rm":
            out.append("1" if d.pop(key, None) is not None else "0")
        elif name == "len":
            out.append(str(len(d)))
    return out


def ops_test(make_ops, timeout=20.0):
    """A test of the operations make_ops returns, and of their results when it returns them too
    (else the dict model computes them)."""
    def test(driver):
        ops = make_ops()
        ops, want = ops if isinstance(ops, tuple) else (ops, None)
        got, why = artifact.scenario(driver, ops, timeout=timeout)
        return why or artifact.compare(ops, got, want or expected(ops))
    return test


def basic():
    return ["len", "get =x", "put =x 1", "put =y 2", "put =x 3", "len", "get =x", "has =y",
            "put = 7", "get =", "len"]


def many_keys():
    ops = ["put =k-%d %d" % (i, i) for i in range(20000)] + ["len"]
    for i in range(20000):
        ops += ["get =k-%d" % i, "get =absent-%d" % i]
    return ops


def remove_missing():
    return ["rm =nothing", "put =a 1", "rm =b", "len", "rm =a", "has =a", "len", "rm =a"]


def churn():
    n = 200000
    ops = [op for i in range(n)
           for op in ("put =tmp-%d %d" % (i, i), "rm =tmp-%d" % i, "has =never-there")]
    return ops + ["len"], ["0", "1", "0"] * n + ["0"]


def remove_keeps_others():
    n = 5000
    ops = ["put =key-%d %d" % (i, i) for i in range(n)]
    ops += ["rm =key-%d" % i for i in range(0, n, 2)] + ["len"]
    return ops + ["get =key-%d" % i for i in range(n)]


def update_after_remove():
    n = 3000
    ops = ["put =d-%d %d" % (i, i) for i in range(n)]
    ops += ["rm =d-%d" % i for i in range(0, n, 3)]
    ops += ["put =d-%d %d" % (i, -i) for i in range(n)] + ["len"]
    for i in range(n):
        ops += ["get =d-%d" % i, "rm =d-%d" % i, "has =d-%d" % i]
    return ops + ["len"]


def random_ops():
    keys, s, ops = 512, 2024, []
    for op in range(300000):
        s = (s * 1664525 + 1013904223) % 2**32
        i, what = (s >> 8) % keys, (s >> 20) % 3
        ops.append(("put =r-%d %d" % (i, op), "rm =r-%d" % i, "get =r-%d" % i)[what])
        if op % 16 == 0:
            ops.append("len")
    return ops


def workspace_cases():
    # the workspace's own tests (make test), run here against the model
    return ["len", "put =one 1", "put =two 2", "get =one", "put =one 11", "get =one", "len",
            "get =three", "rm =two", "rm =two", "has =two", "len"]


TESTS = [
    ("basic put/get/update", ops_test(basic)),
    ("many keys", ops_test(many_keys)),
    ("remove missing and single key", ops_test(remove_missing)),
    ("churn does not fill the table", ops_test(churn)),
    ("remove keeps other keys reachable", ops_test(remove_keeps_others)),
    ("update after remove makes no duplicates", ops_test(update_after_remove)),
    ("random operations match a model", ops_test(random_ops)),
    ("workspace test cases", ops_test(workspace_cases)),
]

if __name__ == "__main__":
    sys.exit(artifact.main("libhashmap.a", TESTS))
