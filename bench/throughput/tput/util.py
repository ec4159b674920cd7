"""Process, namespace and command helpers shared by the runner.

Everything the runner starts or creates is recorded in one Registry so that a single
cleanup() removes it: processes the runner spawned (killed by their own PID / process
group, never by name), network namespaces it created (names carry the runner's PID), the
temporary key directory and wireguard-go control sockets with the runner's unique names.
"""
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

PREFIX = "mfb%d" % os.getpid()          # unique per runner: namespaces, temp dirs
WG_PREFIX = "mfw%d" % os.getpid()       # wireguard-go interface names (<= 15 chars)


class RunnerError(Exception):
    """The runner itself cannot do what was asked (bad option, missing tool, kernel lacks a
    feature, a command of the plumbing failed). Exit code 2."""


class Unavailable(Exception):
    """A system cannot be measured here (not installed, not built, exits at start saying
    it has no data plane yet). Reported in the table and JSON; not an error."""


class SystemFailed(Exception):
    """A system that is available started but does not carry traffic. Exit code 1."""


class Interrupted(BaseException):
    def __init__(self, signum):
        super().__init__("interrupted by signal %d" % signum)
        self.signum = signum


VERBOSE = False


def log(msg):
    print("[throughput] " + msg, file=sys.stderr, flush=True)


def debug(msg):
    if VERBOSE:
        log(msg)


def ns_argv(ns, argv, cores=None):
    """argv run inside namespace ns (or the root namespace when ns is None), pinned to cores."""
    full = list(argv)
    if cores:
        full = ["taskset", "-c", cores] + full
    if ns:
        full = ["ip", "netns", "exec", ns] + full
    return full


def run(argv, ns=None, cores=None, timeout=30, check=True, input=None, env=None):
    """Run a command to completion (always with a timeout); returns CompletedProcess."""
    full = ns_argv(ns, argv, cores)
    debug("$ " + " ".join(shlex.quote(a) for a in full))
    try:
        cp = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                            input=input, env=env)
    except subprocess.TimeoutExpired as e:
        raise RunnerError("timed out after %ss: %s" % (timeout, " ".join(full))) from e
    except FileNotFoundError as e:
        raise RunnerError("command not found: %s" % full[0]) from e
    if check and cp.returncode != 0:
        raise RunnerError("command failed (rc %d): %s\n%s" % (
            cp.returncode, " ".join(full), (cp.stderr or cp.stdout).strip()[-2000:]))
    return cp


def run_together(cmds, timeout=30):
    """Start every (argv, ns) of cmds at once, then wait for all: e.g. bring both ends of a
    tunnel up at the same moment. Raises RunnerError if one fails or outlives timeout."""
    procs = []
    for argv, ns in cmds:
        full = ns_argv(ns, argv)
        debug("$ " + " ".join(shlex.quote(a) for a in full) + " &")
        try:
            procs.append((full, subprocess.Popen(full, stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT, text=True,
                                                 stdin=subprocess.DEVNULL)))
        except FileNotFoundError as e:
            raise RunnerError("command not found: %s" % full[0]) from e
    deadline = time.monotonic() + timeout
    errors = []
    for full, p in procs:
        try:
            out, _ = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            errors.append("timed out after %ss: %s" % (timeout, " ".join(full)))
            continue
        if p.returncode != 0:
            errors.append("command failed (rc %d): %s\n%s" % (p.returncode, " ".join(full),
                                                              (out or "").strip()[-2000:]))
    if errors:
        raise RunnerError("\n".join(errors))


class Registry:
    """What this runner created; cleanup() undoes it, in reverse, tolerating failures."""

    def __init__(self):
        self.procs = []        # (Popen, label, logfile)
        self.namespaces = []   # names, all starting with PREFIX
        self.paths = []        # temp dirs / sockets to remove
        self.cleaned = False

    # ---- processes -------------------------------------------------------------------
    def spawn(self, argv, ns=None, cores=None, log_path=None, env=None, label=None, cwd=None):
        full = ns_argv(ns, argv, cores)
        debug("& " + " ".join(shlex.quote(a) for a in full))
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL
        try:
            # New session: the child and everything it forks live in process group == its PID,
            # so we can signal exactly what we started. `ip netns exec` and taskset exec() the
            # real program, so Popen.pid is the daemon's own PID.
            p = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, env=env, cwd=cwd)
        except FileNotFoundError as e:
            raise RunnerError("command not found: %s" % full[0]) from e
        finally:
            if log_path:
                out.close()
        self.procs.append((p, label or argv[0], log_path))
        return p

    def stop(self, p, grace=3.0):
        """SIGTERM the process group we created for p, then SIGKILL after a bounded wait."""
        if p.poll() is None:
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    break
                except PermissionError:
                    p.send_signal(sig)
                try:
                    p.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:
            # leader gone; make sure nothing it forked in its group survives
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.procs = [t for t in self.procs if t[0] is not p]

    # ---- namespaces ------------------------------------------------------------------
    def add_ns(self, name):
        assert name.startswith(PREFIX)
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        run(["ip", "link", "set", "lo", "up"], ns=name)
        return name

    def del_ns(self, name):
        # Anything still running inside a namespace this runner created was started by this
        # runner (directly or by one of its daemons): kill those PIDs before deleting it.
        cp = run(["ip", "netns", "pids", name], check=False, timeout=10)
        for tok in (cp.stdout or "").split():
            try:
                os.kill(int(tok), signal.SIGKILL)
            except (ValueError, ProcessLookupError, PermissionError):
                pass
        run(["ip", "netns", "del", name], check=False, timeout=10)
        if name in self.namespaces:
            self.namespaces.remove(name)

    def add_path(self, path):
        self.paths.append(path)
        return path

    def cleanup(self):
        if self.cleaned:
            return
        for p, _, _ in reversed(list(self.procs)):
            try:
                self.stop(p, grace=2.0)
            except Exception as e:  # keep going
                log("cleanup: %s" % e)
        for ns in reversed(list(self.namespaces)):
            try:
                self.del_ns(ns)
            except Exception as e:
                log("cleanup: %s" % e)
        for path in reversed(self.paths):
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                elif os.path.lexists(path):
                    os.unlink(path)
            except OSError as e:
                log("cleanup: %s" % e)
        self.paths = []
        self.cleaned = True


REG = Registry()


def wait_until(pred, timeout, interval=0.1, what="condition"):
    """Poll pred() until it is true; bounded by timeout seconds. Returns True/False."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline and n < 100000:
        if pred():
            return True
        time.sleep(interval)
        n += 1
    return bool(pred())


def proc_cpu_seconds(pid):
    """utime+stime of a process (all its threads) from /proc/<pid>/stat, in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def tail(path, n=5):
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip() for l in f.readlines() if l.strip()]
        return lines[-n:]
    except OSError:
        return []


def write_file(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def shutil_which(cmd):
    return shutil.which(cmd)
