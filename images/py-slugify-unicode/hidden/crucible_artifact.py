"""Call the artifact's Python code from a hidden test without importing it.

A hidden test runs as the checker; the code it judges is the artifact. The checker never
imports workspace code: every call into it happens in a child process that runs as the
artifact identity (uid/gid from CRUCIBLE_ARTIFACT_UID/GID, 1000 by default, no supplementary
groups, so no capabilities), and only plain data crosses back: return values, exceptions,
warnings, printed text. The assertions run here, in the checker.

    stats = crucible_artifact.module("stats")
    assert stats.median([1, 2]) == 1.5          # one call in the child

    lru = crucible_artifact.module("lru")
    c = lru.LRUCache(2)                          # an object stays in the child: a handle
    c.put("a", 1); assert "a" in c and len(c) == 1

    with pytest.raises(deps.CycleError) as info: # a class of the artifact's exceptions
        deps.build_order({"a": ["a"]})
    assert info.value.cycle == ["a"]

    counts = crucible_artifact.keep(wordfreq.count_words, "a b a")  # the result stays there
    assert wordfreq.ranked(counts) == [("a", 2), ("b", 1)]

    r = crucible_artifact.run(["python3", "tool.py", "--help"])   # a program, as the artifact
    assert r.returncode == 0 and "usage" in r.stdout

Values: None, bool, int, float (nan and inf too), str, bytes, bytearray, complex, list,
tuple, dict, set, frozenset, datetime's date/datetime/time/timedelta, Decimal and Fraction
cross as values (a subclass arrives as its base type). Anything else stays in the child and
arrives as a Remote handle: its attributes, methods, calls, len(), `in`, iteration (a list
made in the child), indexing and bool() are calls into the child. Lists, dicts, sets and
bytearrays given as arguments are updated in place after the call with what the call made
of them, so "the input is not modified" still means something.

Exceptions: one of a builtin class that derives from Exception arrives as that class with
the same args (ValueError, KeyError, TypeError, RecursionError...). Any other (a class of the
artifact, SystemExit...) arrives as a RemoteException subclass named after the remote class
that also derives from the remote class's nearest builtin base, so the artifact's class
obtained as an attribute (deps.CycleError) works with pytest.raises and isinstance; its
public attributes are copied as values. Everything else that goes wrong (the child died,
timed out, said something malformed) is an ArtifactError, which no builtin class matches:
it can only fail a test. Warnings issued by a call are issued again here, so pytest.warns
and warnings filters work as they would in process.

The protocol is JSON lines over two pipes of their own; the child's stdout and stderr go
to another pipe whose tail only appears in error messages, never on the checker's output.
"""

import base64
import builtins
import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
import warnings
import weakref

__all__ = ["ArtifactError", "RemoteException", "RemoteWarning", "Remote", "module", "run",
           "same", "keep", "last_output", "restart", "shared_dir", "TIMEOUT"]

WORKSPACE = "/workspace"
TIMEOUT = 10.0               # seconds per call, unless module(..., timeout=) says otherwise
MAX_MESSAGE = 64 << 20       # bytes of one protocol line from the child
MAX_OUTPUT = 16 << 20        # bytes of a program's stdout or stderr kept by run()
MAX_DEPTH = 100              # nesting of one value
PATH = "/usr/local/bin:/usr/bin:/bin"


class ArtifactError(Exception):
    """The artifact's code failed in a way no builtin exception describes."""


class RemoteException(ArtifactError):
    """Base of the classes that stand for the artifact's own exception classes."""

    remote_type = "?"
    remote_message = ""

    def __str__(self):
        return self.remote_message


class RemoteWarning(Warning):
    """Base of the classes that stand for the artifact's own warning classes."""


def _artifact_ids():
    try:
        uid = int(os.environ.get("CRUCIBLE_ARTIFACT_UID", "1000"))
        gid = int(os.environ.get("CRUCIBLE_ARTIFACT_GID", "1000"))
    except ValueError:
        raise ArtifactError("CRUCIBLE_ARTIFACT_UID/GID are not numbers") from None
    if uid <= 0 or gid <= 0:
        raise ArtifactError("refusing to run the artifact's code as root")
    return uid, gid


def _identity():
    """Popen arguments that run a child as the artifact."""
    uid, gid = _artifact_ids()
    if os.geteuid() == uid and os.getegid() == gid:
        return {}
    return {"user": uid, "group": gid, "extra_groups": []}


def _env():
    return {"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/tmp", "TERM": "dumb",
            "PYTHONDONTWRITEBYTECODE": "1"}


def _kill_group(proc):
    for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL), proc.kill):
        try:
            kill()
        except OSError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


class _Tail:
    """Drains a pipe in a thread and keeps its last bytes."""

    def __init__(self, fd, keep=1 << 16):
        self.keep, self.data, self.lock = keep, bytearray(), threading.Lock()
        self.thread = threading.Thread(target=self._drain, args=(fd,), daemon=True)
        self.thread.start()

    def _drain(self, fd):
        try:
            while True:
                b = os.read(fd, 1 << 16)
                if not b:
                    break
                with self.lock:
                    self.data += b
                    if len(self.data) > self.keep:
                        del self.data[:len(self.data) - self.keep]
        except OSError:
            pass
        finally:
            os.close(fd)

    def text(self, n=2000):
        with self.lock:
            return bytes(self.data[-n:]).decode("utf-8", "replace")


# ---------------------------------------------------------------- the child's side

_BOOTSTRAP = r'''
import base64, importlib, io, json, linecache, math, os, sys, tokenize, traceback, warnings

def main():
    rfd, wfd, ws = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    sys.dont_write_bytecode = True
    sys.path.insert(0, ws)
    rf, wf = os.fdopen(rfd, "rb"), os.fdopen(wfd, "wb")
    objs, counter = {}, [0]
    MAXOUT = 1 << 20

    def names(cls):
        return [[str(getattr(c, "__module__", "?")), str(getattr(c, "__qualname__", "?"))]
                for c in cls.__mro__][:64]

    def describe(x):
        try:
            d = type(x).__name__
            n = getattr(x, "__qualname__", None) or getattr(x, "__name__", None)
            m = getattr(x, "__module__", None)
            if isinstance(n, str):
                d += " " + (m + "." if isinstance(m, str) and m != n else "") + n
            return str(d)[:200]
        except BaseException:
            return "object"

    def ienc(x):
        return x if -(1 << 63) <= x < (1 << 63) else {"t": "int", "v": format(x, "x")}

    def fenc(x):
        return x if math.isfinite(x) else {"t": "float", "v": repr(x)}

    def ref(x):
        counter[0] += 1
        objs[counter[0]] = x
        return {"t": "ref", "id": counter[0], "type": describe(x)}

    def enc(x, st, d=0, top=False):
        if d > 100:
            raise ValueError("value nested too deeply")
        if x is None or x is True or x is False:
            return x
        t = type(x)
        if t is str:
            return x
        if t is int:
            return ienc(x)
        if t is float:
            return fenc(x)
        k = st["memo"].get(id(x))
        if k is not None and not top and st["table"][k] is x:
            return {"t": "mref", "m": k}
        e = lambda v: enc(v, st, d + 1)
        if isinstance(x, int):
            return ienc(int(x))
        if isinstance(x, float):
            return fenc(float(x))
        if isinstance(x, str):
            return str.__str__(x)
        if isinstance(x, list):
            return {"t": "list", "v": [e(v) for v in x]}
        if isinstance(x, tuple):
            return {"t": "tuple", "v": [e(v) for v in x]}
        if isinstance(x, dict):
            return {"t": "dict", "v": [[e(a), e(b)] for a, b in x.items()]}
        if isinstance(x, (set, frozenset)):
            return {"t": "set" if isinstance(x, set) else "frozenset", "v": [e(v) for v in x]}
        if isinstance(x, (bytes, bytearray)):
            return {"t": "bytes" if isinstance(x, bytes) else "bytearray",
                    "v": base64.b64encode(bytes(x)).decode()}
        if isinstance(x, complex):
            return {"t": "complex", "v": [repr(x.real), repr(x.imag)]}
        dt, dm, fm = (sys.modules.get(n) for n in ("datetime", "decimal", "fractions"))
        if isinstance(x, getattr(dt, "datetime", ())):
            return {"t": "datetime", "v": x.isoformat()}
        if isinstance(x, getattr(dt, "date", ())):
            return {"t": "date", "v": x.isoformat()}
        if isinstance(x, getattr(dt, "time", ())):
            return {"t": "time", "v": x.isoformat()}
        if isinstance(x, getattr(dt, "timedelta", ())):
            return {"t": "timedelta", "v": [x.days, x.seconds, x.microseconds]}
        if isinstance(x, getattr(dm, "Decimal", ())):
            return {"t": "decimal", "v": str(x)}
        if isinstance(x, getattr(fm, "Fraction", ())):
            return {"t": "fraction", "v": [ienc(x.numerator), ienc(x.denominator)]}
        if isinstance(x, type) and issubclass(x, BaseException):
            return {"t": "excclass", "mro": names(x)}
        return ref(x)

    def dec(v, st, d=0):
        if d > 100:
            raise ValueError("value nested too deeply")
        if v is None or type(v) in (bool, int, float, str):
            return v
        t, x = v["t"], v.get("v")
        r = lambda y: dec(y, st, d + 1)
        if t == "mref":
            return st["table"][v["m"]]
        if t == "ref":
            if v["id"] not in objs:
                raise ValueError("stale handle")
            return objs[v["id"]]
        if t in ("list", "dict", "set", "bytearray"):
            o = {"list": list, "dict": dict, "set": set, "bytearray": bytearray}[t]()
            if "m" in v:
                if v["m"] != len(st["table"]):
                    raise ValueError("bad mutable id")
                st["table"].append(o)
                st["memo"][id(o)] = v["m"]
            if t == "list":
                o.extend(r(y) for y in x)
            elif t == "dict":
                for a, b in x:
                    ka = r(a)
                    o[ka] = r(b)
            elif t == "set":
                o.update(r(y) for y in x)
            else:
                o.extend(base64.b64decode(x))
            return o
        if t == "tuple":
            return tuple(r(y) for y in x)
        if t == "frozenset":
            return frozenset(r(y) for y in x)
        if t == "bytes":
            return base64.b64decode(x)
        if t == "int":
            return int(x, 16)
        if t == "float":
            return float(x)
        if t == "complex":
            return complex(float(x[0]), float(x[1]))
        if t in ("datetime", "date", "time", "timedelta"):
            import datetime
            if t == "timedelta":
                return datetime.timedelta(x[0], x[1], x[2])
            return getattr(datetime, t).fromisoformat(x)
        if t == "decimal":
            import decimal
            return decimal.Decimal(x)
        if t == "fraction":
            import fractions
            return fractions.Fraction(r(x[0]), r(x[1]))
        raise ValueError("unknown tag %r" % (t,))

    def exc_info(e, st):
        d = {"mro": names(type(e)), "args": None, "attrs": {}}
        try:
            d["msg"] = str(e)[:MAXOUT]
        except BaseException:
            d["msg"] = "<unprintable %s>" % type(e).__name__
        try:
            d["args"] = [enc(a, st) for a in tuple(e.args)]
        except BaseException:
            pass
        try:
            base = set(dir(BaseException))
            keys = [k for k in vars(e) if isinstance(k, str)]
            keys += [k for k in dir(type(e)) if isinstance(k, str)]
            for k in keys:
                if k.startswith("_") or k in base or k in d["attrs"]:
                    continue
                try:
                    v = getattr(e, k)
                    if not callable(v) or isinstance(v, type):
                        d["attrs"][k] = enc(v, st)
                except BaseException:
                    pass
        except BaseException:
            pass
        try:
            d["tb"] = "".join(traceback.format_exception(e))[-20000:]
        except BaseException:
            d["tb"] = ""
        return d

    def run_user(fn, st, resp, keep=False):
        out, err = io.StringIO(), io.StringIO()
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        try:
            with warnings.catch_warnings(record=True) as ws:
                warnings.simplefilter("always")
                try:
                    value = fn()
                except BaseException as e:
                    resp["exc"] = exc_info(e, st)
                else:
                    try:
                        resp["ok"] = ref(value) if keep else enc(value, st)
                    except BaseException as e:     # a protocol error, not the call's
                        raise RuntimeError("cannot send the result: %s: %s"
                                           % (type(e).__name__, e)) from None
            resp["warnings"] = []
            for w in ws[:100]:
                try:
                    resp["warnings"].append({"mro": names(w.category),
                                             "msg": str(w.message)[:MAXOUT],
                                             "file": str(w.filename),
                                             "line": int(w.lineno or 0)})
                except BaseException:
                    pass
        finally:
            sys.stdout, sys.stderr = saved
        resp["out"], resp["err"] = out.getvalue()[:MAXOUT], err.getvalue()[:MAXOUT]
        muts = []
        for k, o in enumerate(st["table"]):
            try:
                muts.append([k, enc(o, st, top=True)])
            except BaseException as e:
                raise ValueError("cannot send an argument back: %s" % (e,))
        resp["muts"] = muts

    def handle(req):
        for i in req.get("release", ()):
            objs.pop(i, None)
        st = {"table": [], "memo": {}}
        op = req["op"]
        if op == "import":
            name = req["name"]
            fn = lambda: importlib.import_module(name)
        else:
            obj = dec(req["ref"], st)
            args = [dec(a, st) for a in req.get("args", ())]
            kwargs = {str(k): dec(v, st) for k, v in req.get("kwargs", {}).items()}
            name = req.get("name")
            fn = {
                "getattr": lambda: getattr(obj, name),
                "setattr": lambda: setattr(obj, name, args[0]),
                "delattr": lambda: delattr(obj, name),
                "call": lambda: obj(*args, **kwargs),
                "len": lambda: len(obj),
                "contains": lambda: args[0] in obj,
                "iter": lambda: list(obj),
                "getitem": lambda: obj[args[0]],
                "setitem": lambda: obj.__setitem__(args[0], args[1]),
                "delitem": lambda: obj.__delitem__(args[0]),
                "bool": lambda: bool(obj),
                "str": lambda: str(obj),
                "repr": lambda: repr(obj),
                "same": lambda: obj is args[0],
            }[op]
        resp = {}
        run_user(fn, st, resp, keep=req.get("keep") is True)
        return resp

    while True:
        line = rf.readline()
        if not line:
            break
        seq = None
        try:
            req = json.loads(line)
            seq = req["seq"]
            resp = handle(req)
            resp["seq"] = seq
            data = json.dumps(resp, ensure_ascii=True, allow_nan=False)
        except BaseException as e:
            try:
                msg = "%s: %s" % (type(e).__name__, str(e)[:2000])
                data = json.dumps({"seq": seq, "error": msg})
            except BaseException:
                data = json.dumps({"seq": seq, "error": "unprintable error"})
        wf.write(data.encode() + b"\n")
        wf.flush()

main()
os._exit(0)
'''


# ---------------------------------------------------------------- the checker's side

def _builtin_classes(root):
    return {n: c for n, c in vars(builtins).items()
            if isinstance(c, type) and issubclass(c, root) and c.__module__ == "builtins"}


_BUILTIN_EXC = _builtin_classes(Exception)
_BUILTIN_WARN = _builtin_classes(Warning)
_classes = {}        # a remote class's MRO (names) -> the local class standing for it


def _local_class(mro, builtin, root):
    """The local class for a remote exception or warning class, from its MRO's names."""
    if not isinstance(mro, list) or not 1 <= len(mro) <= 64:
        raise ValueError("bad class")
    mro = [tuple(p) for p in mro]
    for p in mro:
        if len(p) != 2 or not all(isinstance(s, str) and 0 < len(s) <= 200 for s in p):
            raise ValueError("bad class name")
    i = next((i for i, (m, q) in enumerate(mro) if m == "builtins" and q in builtin), None)
    if i is None:      # no builtin base we map: stands for the classes up to the first builtin
        base = None
        i = max(1, next((j for j, (m, q) in enumerate(mro) if m == "builtins"), len(mro)))
    else:
        base = builtin[mro[i][1]]
    chain = mro[:i]
    if not chain:
        return base
    parent = None
    for j in range(len(chain) - 1, -1, -1):
        key = (root.__name__,) + tuple(mro[j:])
        cls = _classes.get(key)
        if cls is None:
            m, q = mro[j]
            ns = {"__module__": "artifact:" + m, "__qualname__": q, "remote_type": "%s.%s" % (m, q)}
            name = q.rsplit(".", 1)[-1]
            bases = (parent,) if parent else ((root, base) if base else (root,))
            try:
                cls = type(name, bases, ns)
            except TypeError:
                cls = type(name, (parent or root,), ns)
            _classes[key] = cls
        parent = cls
    return parent


class Remote:
    """A handle to an object that stays in the artifact's process."""

    __slots__ = ("_crucible_s", "_crucible_gen", "_crucible_id", "_crucible_type",
                 "_crucible_timeout", "__weakref__")

    def __init__(self, session, gen, rid, rtype, timeout):
        object.__setattr__(self, "_crucible_s", session)
        object.__setattr__(self, "_crucible_gen", gen)
        object.__setattr__(self, "_crucible_id", rid)
        object.__setattr__(self, "_crucible_type", rtype)
        object.__setattr__(self, "_crucible_timeout", timeout)
        weakref.finalize(self, session.release, gen, rid)

    def _op(self, op, *args, **kw):
        __tracebackhide__ = True
        return self._crucible_s.op(op, self._crucible_timeout, ref=self, args=args, **kw)

    def __getattr__(self, name):
        __tracebackhide__ = True
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._op("getattr", name=name)

    def __setattr__(self, name, value):
        __tracebackhide__ = True
        self._op("setattr", value, name=name)

    def __delattr__(self, name):
        __tracebackhide__ = True
        self._op("delattr", name=name)

    def __call__(self, *args, **kwargs):
        __tracebackhide__ = True
        return self._op("call", *args, kwargs=kwargs)

    def __len__(self):
        __tracebackhide__ = True
        v = self._op("len")
        if type(v) is not int:
            raise ArtifactError("len() did not give an int")
        return v

    def __contains__(self, item):
        __tracebackhide__ = True
        return self._op("contains", item) is True

    def __iter__(self):
        __tracebackhide__ = True
        v = self._op("iter")
        if not isinstance(v, list):
            raise ArtifactError("iteration did not give a list")
        return iter(v)

    def __getitem__(self, key):
        __tracebackhide__ = True
        return self._op("getitem", key)

    def __setitem__(self, key, value):
        __tracebackhide__ = True
        self._op("setitem", key, value)

    def __delitem__(self, key):
        __tracebackhide__ = True
        self._op("delitem", key)

    def __bool__(self):
        __tracebackhide__ = True
        v = self._op("bool")
        if not isinstance(v, bool):
            raise ArtifactError("bool() did not give a bool")
        return v

    def __repr__(self):
        return "<artifact %s #%d>" % (self._crucible_type, self._crucible_id)


class _Encoder:
    """Checker values to JSON; lists, dicts, sets and bytearrays get an id to update them."""

    def __init__(self, session):
        self.session, self.table, self.memo = session, [], {}

    def enc(self, x, d=0):
        if d > MAX_DEPTH:
            raise ArtifactError("argument nested too deeply")
        if x is None or x is True or x is False:
            return x
        t = type(x)
        if t is str:
            return x
        if isinstance(x, int):
            x = int(x)
            return x if -(1 << 63) <= x < (1 << 63) else {"t": "int", "v": format(x, "x")}
        if isinstance(x, float):
            x = float(x)
            return x if math.isfinite(x) else {"t": "float", "v": repr(x)}
        if isinstance(x, str):
            return str(x)
        if isinstance(x, Remote):
            if x._crucible_s is not self.session or x._crucible_gen != self.session.gen:
                raise ArtifactError("%r belongs to an artifact process that is gone" % (x,))
            return {"t": "ref", "id": x._crucible_id}
        e = lambda v: self.enc(v, d + 1)
        if t in (list, dict, set, bytearray):
            k = self.memo.get(id(x))
            if k is not None:
                return {"t": "mref", "m": k}
            k = self.memo[id(x)] = len(self.table)
            self.table.append(x)
            if t is list:
                return {"t": "list", "m": k, "v": [e(v) for v in x]}
            if t is dict:
                return {"t": "dict", "m": k, "v": [[e(a), e(b)] for a, b in x.items()]}
            if t is set:
                return {"t": "set", "m": k, "v": [e(v) for v in x]}
            return {"t": "bytearray", "m": k, "v": base64.b64encode(x).decode()}
        if isinstance(x, list):
            return {"t": "list", "v": [e(v) for v in x]}
        if isinstance(x, tuple):
            return {"t": "tuple", "v": [e(v) for v in x]}
        if isinstance(x, dict):
            return {"t": "dict", "v": [[e(a), e(b)] for a, b in x.items()]}
        if isinstance(x, (set, frozenset)):
            return {"t": "set" if isinstance(x, set) else "frozenset", "v": [e(v) for v in x]}
        if isinstance(x, (bytes, bytearray)):
            return {"t": "bytes", "v": base64.b64encode(bytes(x)).decode()}
        if isinstance(x, complex):
            return {"t": "complex", "v": [repr(x.real), repr(x.imag)]}
        dt, dm, fm = (sys.modules.get(n) for n in ("datetime", "decimal", "fractions"))
        if isinstance(x, getattr(dt, "datetime", ())):
            return {"t": "datetime", "v": x.isoformat()}
        if isinstance(x, getattr(dt, "date", ())):
            return {"t": "date", "v": x.isoformat()}
        if isinstance(x, getattr(dt, "time", ())):
            return {"t": "time", "v": x.isoformat()}
        if isinstance(x, getattr(dt, "timedelta", ())):
            return {"t": "timedelta", "v": [x.days, x.seconds, x.microseconds]}
        if isinstance(x, getattr(dm, "Decimal", ())):
            return {"t": "decimal", "v": str(x)}
        if isinstance(x, getattr(fm, "Fraction", ())):
            return {"t": "fraction", "v": [e(x.numerator), e(x.denominator)]}
        raise ArtifactError("cannot pass a %s to the artifact" % t.__name__)


def _s(v, n=1 << 20):
    if not isinstance(v, str) or len(v) > n:
        raise ValueError("expected a string")
    return v


def _i(v):
    if type(v) is not int:
        raise ValueError("expected an integer")
    return v


def _list(v):
    if type(v) is not list:
        raise ValueError("expected a list")
    return v


class _Decoder:
    """JSON from the child to checker values; anything unexpected raises (and becomes an
    ArtifactError in the caller)."""

    def __init__(self, session, table, timeout):
        self.session, self.table, self.timeout = session, table, timeout

    def dec(self, v, d=0):
        if d > MAX_DEPTH:
            raise ValueError("value nested too deeply")
        if v is None or type(v) in (bool, int, float, str):
            return v
        if type(v) is not dict:
            raise ValueError("malformed value")
        t, x = _s(v.get("t"), 20), v.get("v")
        r = lambda y: self.dec(y, d + 1)
        if t == "list":
            return [r(y) for y in _list(x)]
        if t == "tuple":
            return tuple(r(y) for y in _list(x))
        if t == "dict":
            out = {}
            for p in _list(x):
                if type(p) is not list or len(p) != 2:
                    raise ValueError("malformed dict")
                out[r(p[0])] = r(p[1])
            return out
        if t == "set":
            return set(r(y) for y in _list(x))
        if t == "frozenset":
            return frozenset(r(y) for y in _list(x))
        if t in ("bytes", "bytearray"):
            b = base64.b64decode(_s(x, MAX_MESSAGE), validate=True)
            return b if t == "bytes" else bytearray(b)
        if t == "int":
            return int(_s(x, 1 << 20), 16)
        if t == "float":
            if x not in ("nan", "inf", "-inf"):
                raise ValueError("bad float")
            return float(x)
        if t == "complex":
            return complex(float(_s(x[0], 40)), float(_s(x[1], 40)))
        if t in ("datetime", "date", "time", "timedelta"):
            import datetime
            if t == "timedelta":
                return datetime.timedelta(_i(x[0]), _i(x[1]), _i(x[2]))
            return getattr(datetime, t).fromisoformat(_s(x, 64))
        if t == "decimal":
            import decimal
            return decimal.Decimal(_s(x, 10000))
        if t == "fraction":
            import fractions
            n, m = r(x[0]), r(x[1])
            return fractions.Fraction(_i(n), _i(m))
        if t == "mref":
            m = _i(v.get("m"))
            if not 0 <= m < len(self.table):
                raise ValueError("bad argument id")
            return self.table[m]
        if t == "ref":
            return Remote(self.session, self.session.gen, _i(v.get("id")),
                          _s(v.get("type"), 500), self.timeout)
        if t == "excclass":
            return _local_class(v.get("mro"), _BUILTIN_EXC, RemoteException)
        raise ValueError("unknown tag")


def _reject_constant(name):
    raise ValueError("non-standard JSON constant %s" % name)


class _Session:
    """The child process that runs the artifact's code, restarted when it fails."""

    def __init__(self):
        self.proc = None
        self.gen = 0
        self.seq = 0
        self.released = []
        self.last_output = ("", "")

    def release(self, gen, rid):
        if gen == self.gen and self.proc is not None:
            self.released.append(rid)

    def start(self):
        self.gen += 1
        self.released = []
        pipes = [os.pipe() for _ in range(3)]    # requests, responses, the child's output
        (req_r, req_w), (resp_r, resp_w), (out_r, out_w) = pipes
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOTSTRAP, str(req_r), str(resp_w), WORKSPACE],
                stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, pass_fds=(req_r, resp_w),
                cwd=WORKSPACE, env=_env(), start_new_session=True, close_fds=True, **_identity())
        except Exception as e:
            for fd in (req_w, resp_r, out_r):
                os.close(fd)
            raise ArtifactError("cannot start the artifact's process: %s" % e) from None
        finally:
            for fd in (req_r, resp_w, out_w):
                os.close(fd)
        self.wfd, self.rfd, self.buf = req_w, resp_r, bytearray()
        os.set_blocking(self.wfd, False)
        os.set_blocking(self.rfd, False)
        self.tail = _Tail(out_r)

    def stop(self):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
        _kill_group(proc)

    def _died(self, why):
        proc = self.proc
        try:
            status = proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            status = None
        self.stop()
        self.tail.thread.join(0.5)
        msg = "the artifact's process %s" % why
        if status is not None:
            msg += " (exit status %d)" % status
        t = self.tail.text()
        if t.strip():
            msg += "; its output ends with:\n" + t
        return ArtifactError(msg)

    def _exchange(self, data, timeout):
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self.wfd], [], left)[1]:
                raise ArtifactError("the artifact's call timed out after %gs" % timeout)
            try:
                view = view[os.write(self.wfd, view):]
            except BlockingIOError:
                pass
            except OSError:
                raise self._died("is gone") from None
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl])
                del self.buf[:nl + 1]
                return line
            if len(self.buf) > MAX_MESSAGE:
                raise ArtifactError("the artifact's process sent an oversized message")
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
                raise ArtifactError("the artifact's call timed out after %gs" % timeout)
            try:
                b = os.read(self.rfd, 1 << 20)
            except BlockingIOError:
                continue
            if not b:
                raise self._died("exited")
            self.buf += b

    def op(self, op, timeout, ref=None, args=(), kwargs=None, name=None, module=None,
           keep=False):
        __tracebackhide__ = True
        if timeout is None:
            timeout = TIMEOUT
        if ref is not None and (ref._crucible_s is not self or ref._crucible_gen != self.gen
                                or self.proc is None):
            raise ArtifactError("%r belongs to an artifact process that is gone" % (ref,))
        if self.proc is None:
            self.start()
        enc = _Encoder(self)
        self.seq += 1
        req = {"op": op, "seq": self.seq}
        if ref is not None:
            req["ref"] = enc.enc(ref)
        if module is not None:
            req["name"] = module
        if name is not None:
            req["name"] = name
        req["args"] = [enc.enc(a) for a in args]
        req["kwargs"] = {str(k): enc.enc(v) for k, v in (kwargs or {}).items()}
        req["release"], self.released = self.released, []
        if keep:
            req["keep"] = True
        data = json.dumps(req, ensure_ascii=True, allow_nan=False).encode() + b"\n"
        try:
            line = self._exchange(data, timeout)
        except ArtifactError:
            self.stop()
            raise
        try:
            outcome = self._decode(line, enc.table, timeout)
        except Exception as e:
            self.stop()
            raise ArtifactError("the artifact's process sent a malformed answer (%s: %s)"
                                % (type(e).__name__, e)) from None
        kind, value, muts, warns = outcome
        for obj, new in muts:
            if isinstance(obj, (list, bytearray)):
                obj[:] = new
            else:
                obj.clear()
                obj.update(new)
        for cls, msg, fname, lineno in warns:    # a name no checker file has
            warnings.warn_explicit(msg, cls, "<artifact>" + fname, lineno)
        if kind == "exc":
            raise value
        return value

    def _decode(self, line, table, timeout):
        resp = json.loads(line, parse_constant=_reject_constant)
        if type(resp) is not dict:
            raise ValueError("not an object")
        if resp.get("seq") != self.seq:
            raise ValueError("an answer out of turn")
        if "error" in resp:
            raise ValueError("the child reports: %s" % _s(resp["error"], 4000))
        d = _Decoder(self, table, timeout)
        self.last_output = (_s(resp.get("out", "")), _s(resp.get("err", "")))
        muts = []
        for p in _list(resp.get("muts", [])):
            k = _i(_list(p)[0])
            if not 0 <= k < len(table):
                raise ValueError("bad argument id")
            new = d.dec(p[1])
            if type(new) is not type(table[k]):
                raise ValueError("an argument came back as another type")
            muts.append((table[k], new))
        if len(muts) != len(set(id(o) for o, _ in muts)):
            raise ValueError("an argument came back twice")
        warns = []
        for w in _list(resp.get("warnings", [])):
            if type(w) is not dict:
                raise ValueError("malformed warning")
            cls = _local_class(w.get("mro"), _BUILTIN_WARN, RemoteWarning)
            if cls is None or not issubclass(cls, Warning):
                raise ValueError("not a warning class")
            warns.append((cls, _s(w.get("msg")), _s(w.get("file"), 4096), _i(w.get("line"))))
        if "exc" in resp:
            return "exc", self._exception(d, resp["exc"]), muts, warns
        if "ok" not in resp:
            raise ValueError("no result")
        return "ok", d.dec(resp["ok"]), muts, warns

    def _exception(self, d, x):
        if type(x) is not dict:
            raise ValueError("malformed exception")
        cls = _local_class(x.get("mro"), _BUILTIN_EXC, RemoteException)
        msg = _s(x.get("msg", ""))
        args = x.get("args")
        args = tuple(d.dec(a) for a in _list(args)) if args is not None else (msg,)
        attrs = {_s(k, 200): d.dec(v) for k, v in (x.get("attrs") or {}).items()}
        tb = _s(x.get("tb", ""))
        if not issubclass(cls, RemoteException):
            try:
                e = cls(*args)
            except Exception:
                e = ArtifactError("%s: %s" % (cls.__name__, msg))
        else:
            try:
                e = cls(*args)
            except Exception:
                e = cls.__new__(cls, *args)     # a base whose __init__ wants other args
            e.remote_message = msg
            for k, v in attrs.items():
                if not k.startswith("_") and not hasattr(cls, k):
                    try:
                        setattr(e, k, v)
                    except Exception:
                        pass
        if tb:
            e.add_note("raised in the artifact:\n" + tb.rstrip())
        return e


_session = _Session()


class _Module:
    """A module of the workspace, imported in the artifact's process on first use."""

    def __init__(self, name, timeout):
        # attributes that are handles are looked up once per process, as `from m import f`
        # would; values (constants) are looked up on each use
        self._name, self._timeout, self._ref, self._attrs = name, timeout, None, {}

    def _remote(self):
        __tracebackhide__ = True
        r = self._ref
        if r is None or r._crucible_gen != _session.gen or _session.proc is None:
            self._attrs = {}
            r = self._ref = _session.op("import", self._timeout, module=self._name)
            if not isinstance(r, Remote):
                raise ArtifactError("importing %s gave %r" % (self._name, r))
        return r

    def __getattr__(self, attr):
        __tracebackhide__ = True
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        r = self._remote()
        v = self._attrs.get(attr)
        if v is None:
            v = getattr(r, attr)
            if isinstance(v, Remote):       # a function or class: kept, as an import would
                self._attrs[attr] = v
        return v

    def __repr__(self):
        return "<artifact module %s>" % self._name


def module(name, timeout=None):
    """The workspace's module NAME, as seen from the checker (imported in the child on
    first use). timeout: seconds per call (default TIMEOUT)."""
    return _Module(name, timeout)


def same(a, b, timeout=None):
    """`a is b` evaluated in the artifact's process (handles are new objects each time)."""
    if not isinstance(a, Remote):
        raise ArtifactError("same() needs a handle")
    return a._op("same", b) is True


def keep(f, *args, **kwargs):
    """f(*args, **kwargs) called in the artifact's process, its result kept there: a Remote
    handle even when it is data (a Counter stays a Counter for the next call)."""
    __tracebackhide__ = True
    if not isinstance(f, Remote):
        raise ArtifactError("keep() needs a handle")
    return f._crucible_s.op("call", f._crucible_timeout, ref=f, args=args, kwargs=kwargs,
                            keep=True)


def last_output():
    """What the last call printed to sys.stdout and sys.stderr, as (stdout, stderr)."""
    return _session.last_output


def restart():
    """End the artifact's process; the next call starts a fresh one."""
    _session.stop()


class Completed:
    """A program's outcome: returncode, stdout and stderr (text)."""

    def __init__(self, args, returncode, stdout, stderr):
        self.args, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr

    def __repr__(self):
        return "Completed(args=%r, returncode=%r, stdout=%r, stderr=%r)" % (
            self.args, self.returncode, self.stdout[:200], self.stderr[:200])


def _collect(fd, sink):
    try:
        while True:
            b = os.read(fd, 1 << 16)
            if not b:
                break
            if len(sink) < MAX_OUTPUT:
                sink += b[:MAX_OUTPUT - len(sink)]
    except OSError:
        pass


def _text(b):
    return b.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


def run(argv, input=None, timeout=30, cwd=WORKSPACE):
    """Run a program as the artifact (cwd /workspace, a clean environment) and return a
    Completed with its exit status and its output as text (at most MAX_OUTPUT bytes of
    each). input: text or bytes for its stdin (none: /dev/null). Running past timeout
    raises ArtifactError."""
    if isinstance(input, str):
        input = input.encode()
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE if input is not None else
                                subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=cwd, env=_env(),
                                start_new_session=True, close_fds=True, **_identity())
    except Exception as e:
        raise ArtifactError("cannot start %r: %s" % (list(argv), e)) from None
    out, err = bytearray(), bytearray()
    threads = [threading.Thread(target=_collect, args=(p.fileno(), s), daemon=True)
               for p, s in ((proc.stdout, out), (proc.stderr, err))]
    if input is not None:
        def feed():
            try:
                proc.stdin.write(input)
            except OSError:
                pass
            try:
                proc.stdin.close()
            except OSError:
                pass
        threads.append(threading.Thread(target=feed, daemon=True))
    for t in threads:
        t.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ArtifactError("%r timed out after %gs" % (list(argv), timeout)) from None
    for t in threads:
        t.join(1)
    if any(t.is_alive() for t in threads):
        _kill_group(proc)       # what it left behind still holds its pipes
        for t in threads:
            t.join(1)
    for f in (proc.stdout, proc.stderr):
        try:
            f.close()
        except OSError:
            pass
    return Completed(list(argv), code, _text(bytes(out)), _text(bytes(err)))


def shared_dir(prefix="crucible"):
    """A fresh folder the artifact may read but not change (for input files of run())."""
    import tempfile
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


import atexit  # noqa: E402
atexit.register(_session.stop)
