"""Run workspace code as the artifact and read back only data; write the checker's TAP report.

The checker (uid 0) never runs, imports or compiles workspace code itself. Everything that comes
from the workspace (make, the compiler over its sources, the binaries built, scripts) runs as the
artifact identity (CRUCIBLE_ARTIFACT_UID/GID), which holds no capability: it cannot read /hidden
or /results, trace or signal the checker, or write its memory. What comes back is bytes on pipes,
bounded in size and time, which the checker compares with values it computed itself. The same
file is in the hidden folder of every C image and of sh-topwords-fix; keep the copies identical.
"""

import os
import resource
import select
import shutil
import signal
import subprocess
import tempfile
import time

UID = int(os.environ.get("CRUCIBLE_ARTIFACT_UID", "1000"))
GID = int(os.environ.get("CRUCIBLE_ARTIFACT_GID", "1000"))
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "TERM": "dumb"}
OUTPUT_LIMIT = 16 << 20  # bytes kept of each of stdout and stderr; the rest is read and dropped

# Sanitizers catch the memory errors the C tasks are about. A report aborts the process. The
# options come from the environment, which overrides those a library may compile in
# (__asan_default_options), so the ones that matter are all spelled out.
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
SANITIZE_ENV = {
    "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:"
                    "log_path=stderr:poison_heap=1:replace_str=1:replace_intrin=1:"
                    "detect_odr_violation=0:symbolize=0",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=0:log_path=stderr:symbolize=0",
}
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: UndefinedBehaviorSanitizer")


def sanitizers():
    """The sanitizer flags this sandbox can run. AddressSanitizer reserves terabytes of address
    space for its shadow memory, so it cannot start under a finite RLIMIT_AS or RLIMIT_DATA (a
    sandbox without a cgroup limits memory that way): then only UndefinedBehaviorSanitizer is
    used, and a memory error shows only as a crash or a wrong result. The limits are the
    checker's own, inherited by every artifact process; nothing of the workspace has a say."""
    for limit in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
        if resource.getrlimit(limit)[0] != resource.RLIM_INFINITY:
            return [f.replace("address,", "") for f in SANITIZE]
    return SANITIZE


class Result:
    """What an artifact process left: exit status, captured output, and why it ended."""

    def __init__(self, status, out, err, timed_out, timeout):
        self.status = status
        self.out = out
        self.err = err
        self.timed_out = timed_out
        self.timeout = timeout

    def why(self):
        if self.timed_out:
            return "timed out after %gs" % self.timeout
        if self.status < 0:
            return "killed by signal %d" % -self.status
        return "exit status %d" % self.status


def artifact_alive():
    """Pids of the artifact's processes that are still running (not zombies)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/status" % name) as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if int(fields["Uid"].split()[0]) == UID and fields["State"].split()[0] not in "ZX":
            pids.append(int(name))
    return pids


def kill_all():
    """End every artifact process, from a child that has become the artifact.

    kill(-1) signals every process the caller may signal but itself: as the artifact, that is
    exactly the artifact's processes of this sandbox's pid namespace, whatever they forked or
    however they detached. Repeated until none runs, so that a fork racing a pass dies too."""
    for _ in range(2000):
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setregid(GID, GID)
                os.setreuid(UID, UID)
                os.kill(-1, signal.SIGKILL)
                os._exit(0)
            except ProcessLookupError:
                os._exit(0)
            except BaseException:
                os._exit(4)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError("cannot become the artifact (uid %d) to end its processes" % UID)
        if not artifact_alive():
            return
        time.sleep(0.001)
    raise RuntimeError("artifact processes still run after 2000 rounds of SIGKILL")


def run(argv, stdin=b"", timeout=10.0, cwd="/workspace", env=None, limit=OUTPUT_LIMIT,
        results=False):
    """Run argv as the artifact with stdin fed from memory and stdout/stderr captured. With
    results, a fourth pipe is passed too, its descriptor's number appended to argv, and what the
    process writes there is the Result's res.

    The process gets no descriptor of the checker's but these pipes. When it exits or its time
    is up, every artifact process is killed, so nothing it started outlives the run."""
    res_r = res_w = None
    if results:
        res_r, res_w = os.pipe()
        argv = list(argv) + [str(res_w)]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=cwd, env=ENV if env is None else env,
                                user=UID, group=GID, extra_groups=[], start_new_session=True,
                                pass_fds=(res_w,) if results else ())
    finally:
        if results:
            os.close(res_w)
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    if results:
        bufs[res_r] = bytearray()
    data = memoryview(stdin)
    infd = proc.stdin.fileno()
    os.set_blocking(infd, False)
    poller = select.poll()
    for fd in bufs:
        poller.register(fd, select.POLLIN)
    if data:
        poller.register(infd, select.POLLOUT)
    else:
        proc.stdin.close()
    open_fds = set(bufs)
    deadline = time.monotonic() + timeout
    timed_out = False
    exited = False
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = not exited
            break
        for fd, _ in poller.poll(min(left, 0.05) * 1000):
            if fd == infd:
                try:
                    n = os.write(infd, data[:65536])
                    data = data[n:]
                except BlockingIOError:
                    continue
                except (BrokenPipeError, OSError):
                    data = data[:0]
                if not data:
                    poller.unregister(infd)
                    proc.stdin.close()
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            room = limit - len(bufs[fd])
            if room > 0:
                bufs[fd] += chunk[:room]
        if not exited and proc.poll() is not None:
            # What it left running would hold the pipes open: end it, then read what is left.
            exited = True
            kill_all()
            deadline = min(deadline, time.monotonic() + 2)
    if not exited:
        # The pipes closed, or time is up. A program may close its output before it ends
        # (coreutils and make do, at exit): wait for it within the time left.
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
        kill_all()
    proc.wait()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        f.close()
    result = Result(proc.returncode, bytes(bufs[out_fd]), bytes(bufs[err_fd]), timed_out, timeout)
    if results:
        os.close(res_r)
        result.res = bytes(bufs[res_r])
    return result


def comment(text, limit=1500):
    """Text (possibly the artifact's) as TAP comment lines that cannot be read as a result."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if len(text) > limit:
        text = text[:limit] + "..."
    out = []
    for line in text.splitlines():
        safe = "".join(c if c.isprintable() else "\\x%02x" % ord(c) if ord(c) < 256 else
                       "\\u%04x" % ord(c) for c in line)
        out.append("# " + safe + "\n")
    return "".join(out)


class Report:
    """A TAP report, written to a place only the checker can reach once every test has run."""

    def __init__(self):
        self.lines = []
        self.notes = []
        self.n = 0
        self.failed = 0

    def note(self, text):
        self.notes.append(comment(text))

    def add(self, name, ok, why=""):
        self.n += 1
        self.failed += not ok
        self.lines.append("%s %d - %s\n" % ("ok" if ok else "not ok", self.n, name))
        if why:
            self.lines.append(comment(why))

    def write(self, path="/results/tap"):
        with open(path, "w") as f:
            f.write("1..%d\n" % self.n)
            f.writelines(self.notes + self.lines)


def sanitizer_report(err):
    """The first line of a sanitizer's report in stderr, or None."""
    text = err.decode("utf-8", "replace")
    for line in text.splitlines():
        if any(mark in line for mark in SANITIZER_MARKS):
            return line.strip()
    return None


def checker_folder():
    """A fresh folder the checker owns that the artifact may read but not change."""
    d = tempfile.mkdtemp(prefix="chk.")
    os.chmod(d, 0o755)
    return d


def artifact_folder():
    """A fresh folder the artifact owns, for what it builds."""
    d = tempfile.mkdtemp(prefix="art.")
    os.chown(d, UID, GID)
    return d


def build_driver(library, driver="driver.c", timeout=60.0):
    """Build the workspace's library with its protected Makefile, then the hidden driver against
    it, both as the artifact and with sanitizers. Returns (path of the driver, None), or
    (None, why) when the build fails. The build works in a copy of the workspace that the
    artifact makes and owns (the checker needs nothing of /workspace to be writable). The
    driver's source is copied out of /hidden (which the artifact cannot read) into a
    checker-owned folder the artifact may read."""
    src = checker_folder()
    shutil.copyfile(os.path.join("/hidden", driver), os.path.join(src, "driver.c"))
    os.chmod(os.path.join(src, "driver.c"), 0o644)
    out = artifact_folder()
    ws = os.path.join(out, "workspace")
    exe = os.path.join(out, "driver")
    san = sanitizers()
    cflags = "-O1 -g -Wall -Wextra -std=c99 " + " ".join(san)
    steps = [
        ["cp", "-R", "/workspace", ws],
        ["make", "-C", ws, "-f", "Makefile", "-s", "CFLAGS=" + cflags, "clean", library],
        ["cc", "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-O1", "-g", *san, "-I" + ws,
         "-o", exe, os.path.join(src, "driver.c"), os.path.join(ws, library)],
    ]
    end = time.monotonic() + timeout
    for argv in steps:
        r = run(argv, timeout=max(1.0, end - time.monotonic()))
        if r.status != 0 or r.timed_out:
            tail = r.err.decode("utf-8", "replace").splitlines()[-12:]
            return None, "%s: %s\n%s" % (" ".join(argv[:4]), r.why(), "\n".join(tail))
    return exe, None


def scenario(driver, ops, timeout=20.0):
    """Run one scenario in a fresh driver process: one operation a line on stdin, one result line
    per operation on the results pipe, then 'end' (what the library prints on stdout goes
    nowhere). Returns (result lines, None) or (None, why): a crash, a sanitizer report, a
    timeout or a result line too many or too few fail the scenario."""
    r = run([driver], stdin=("".join(op + "\n" for op in ops)).encode("latin-1"),
            timeout=timeout, env=dict(ENV, **SANITIZE_ENV), results=True)
    report = sanitizer_report(r.err)
    if report:
        return None, "sanitizer: " + report
    if r.timed_out or r.status != 0:
        return None, "driver %s\n%s" % (r.why(), r.err.decode("utf-8", "replace")[-800:])
    lines = r.res.decode("latin-1").split("\n")
    if len(lines) != len(ops) + 2 or lines[-2] != "end" or lines[-1] != "":
        return None, "the driver printed %d lines for %d operations" % (len(lines) - 1, len(ops))
    return lines[:-2], None


def compare(ops, got, want):
    """None when every result line is the expected one, else the first difference."""
    if got == want:
        return None
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return "operation %d '%s': got '%s', expected '%s'" % (i + 1, ops[i][:80], g[:200],
                                                                   w[:200])
    return "%d results, expected %d" % (len(got), len(want))


def main(library, tests):
    """Build, run every test (name, function(driver) -> None or why), write the report."""
    report = Report()
    if "address" not in " ".join(sanitizers()):
        report.note("AddressSanitizer cannot run under this sandbox's memory rlimits; UBSan only")
    driver, why = build_driver(library)
    for name, fn in tests:
        if driver is None:
            report.add(name, False, "build failed: " + why if report.n == 0 else "build failed")
            continue
        try:
            problem = fn(driver)
        except Exception as e:  # output that does not parse is a failure of the artifact
            problem = "%s: %s" % (type(e).__name__, e)
        report.add(name, problem is None, problem or "")
    report.write()
    kill_all()
    return 0
