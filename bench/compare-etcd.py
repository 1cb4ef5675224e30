#!/usr/bin/python3
"""Side-by-side benchmark: tidemark versus etcd 3.4 (Debian etcd-server), one run.

Starts both servers on 127.0.0.1 (fresh temporary data dirs, free ports), runs
the same matrix of etcd's own `benchmark` tool against each, interleaved test
by test (A B, then B A in the next run, ...), and reports medians, ratios
tidemark/etcd and whether the performance targets are met. Both servers are
stopped at the end, also on error or Ctrl-C.

Run with Debian's interpreter (stdlib only):  /usr/bin/python3 bench/compare-etcd.py --help
See bench/README.md.
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = Path(os.environ.get("TIDEMARK_BENCH_CACHE",
                                    str(Path.home() / ".cache" / "tidemark-bench")))
RANGE_KEY = "rangekey"          # 8 bytes, like the benchmark's own keys
KEY_SIZE = 8
VAL_SIZE = 256
KEY_SPACE = 100000
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Targets for tidemark (B) relative to etcd (A); see bench/README.md.
TARGET_PUT_RPS = 2.0
TARGET_PUT_P99 = 0.5
TARGET_RANGE_RPS = 3.0
TARGET_1C_SLACK_US = 100.0
TARGET_RSS = 0.5
TARGET_WATCH_EVENTS = 5.0     # issue 3: watch events/s >= 5x etcd
TARGET_WATCH_P99 = 1.0        # issue 3: watch-latency p99 <= etcd
TARGET_KEEPALIVE_RPS = 2.0    # issue 3: lease keep-alive >= 2x etcd


def log(msg):
    print(f"[compare-etcd {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The matrix
# --------------------------------------------------------------------------

class Test:
    """One benchmark command. `kind` says which numbers are meaningful:
    'rps' (throughput and latency), 'events' (events/s only: watch),
    'latency' (latency only: watch-latency)."""

    def __init__(self, name, title, group, kind, build):
        self.name, self.title, self.group, self.kind, self.build = name, title, group, kind, build

    def args(self, cfg):
        """-> (benchmark args without --endpoints, number of results expected)."""
        return self.build(cfg)


def _multi(cfg):
    return ["--conns=10", "--clients=100"]


def _one(cfg):
    return ["--conns=1", "--clients=1"]


def _put(cfg, extra, conns, total):
    return (["put"] + conns + extra +
            [f"--key-size={KEY_SIZE}", f"--val-size={VAL_SIZE}", f"--total={total}"], total)


def _range(cfg, consistency, conns, total):
    return (["range", RANGE_KEY] + conns + [f"--consistency={consistency}", f"--total={total}"], total)


def _watch(cfg, put_rate=None):
    # 1000 watchers (10 streams x 100), spread over `watched` keys; every put
    # on a watched key produces one event per watcher of that key. At the
    # default put rate (5000/s) the puts alone take events/500k seconds, so
    # events/s cannot exceed 500k; watch-hi (50,000 puts/s) lifts that cap so
    # the servers (and the benchmark client) are what limits.
    watchers, watched = 1000, 10
    events = cfg.watch_events
    puts = max(1, events * watched // watchers)
    return (["watch"] + _multi(cfg) +
            ["--streams=10", "--watch-per-stream=100", f"--watched-key-total={watched}",
             "--sequential-keys", f"--key-space-size={KEY_SPACE}", f"--key-size={KEY_SIZE}",
             f"--put-rate={put_rate or cfg.watch_put_rate}", f"--put-total={puts}"],
            puts * watchers // watched)


def _watch_latency(cfg, clients=100):
    n = cfg.watch_latency_puts
    # `clients` watchers of one key; one result per watcher per put. The tool
    # spreads clients over the 10 connections and each connection's watchers
    # share one Watch stream: 100 clients = 10 watchers per stream, 10 = one.
    return (["watch-latency", "--conns=10", f"--clients={clients}",
             f"--total={n}", f"--put-rate={cfg.watch_latency_rate}",
             f"--key-size={KEY_SIZE}", f"--val-size={VAL_SIZE}"], n * clients)


TESTS = [
    Test("put-seq", "put, sequential keys", "core", "rps",
         lambda c: _put(c, ["--sequential-keys", f"--key-space-size={KEY_SPACE}"], _multi(c), c.total)),
    Test("put-rand", "put, random keys (space 100k)", "core", "rps",
         lambda c: _put(c, [f"--key-space-size={KEY_SPACE}"], _multi(c), c.total)),
    Test("range-s", "range 1 key, serializable", "core", "rps",
         lambda c: _range(c, "s", _multi(c), c.total)),
    Test("range-l", "range 1 key, linearizable", "core", "rps",
         lambda c: _range(c, "l", _multi(c), c.total)),
    Test("txn-put", "txn-put, 1 op", "core", "rps",
         lambda c: (["txn-put"] + _multi(c) +
                    ["--txn-ops=1", f"--key-space-size={KEY_SPACE}", f"--key-size={KEY_SIZE}",
                     f"--val-size={VAL_SIZE}", f"--total={c.total}"], c.total)),
    Test("put-1c", "put, 1 client", "core", "rps",
         lambda c: _put(c, [f"--key-space-size={KEY_SPACE}"], _one(c), c.total_1c)),
    Test("range-1c", "range linearizable, 1 client", "core", "rps",
         lambda c: _range(c, "l", _one(c), c.total_1c)),
    Test("watch", "watch, 1000 watchers (events/s)", "watch", "events", _watch),
    Test("watch-hi", "watch, 1000 watchers, puts at 50k/s (events/s)", "watch", "events",
         lambda c: _watch(c, put_rate=50000)),
    Test("watch-latency", "watch-latency, 100 watchers", "watch", "latency", _watch_latency),
    Test("watch-latency-1ps", "watch-latency, 10 watchers, one per stream", "watch", "latency",
         lambda c: _watch_latency(c, clients=10)),
    Test("lease-keepalive", "lease-keepalive", "watch", "rps",
         lambda c: (["lease-keepalive"] + _multi(c) + [f"--total={c.total}"], c.total)),
]


# --------------------------------------------------------------------------
# Parsing the benchmark's report (pkg/report/report.go; --precise prints %g)
# --------------------------------------------------------------------------

NUM = r"([-+0-9.eE]+|NaN|\+Inf)"


def parse_report(text):
    """Parse the last Summary block of a benchmark's stdout (for `watch` the
    second summary, 'Watch events received'). Times in seconds."""
    text = text.replace("\r", "\n")
    idx = text.rfind("Summary:")
    if idx < 0:
        return None
    block = text[idx:]
    out = {}
    for key, field in (("Total", "total_s"), ("Slowest", "slowest_s"), ("Fastest", "fastest_s"),
                       ("Average", "avg_s"), ("Stddev", "stddev_s")):
        m = re.search(rf"^\s*{key}:\s*{NUM} secs", block, re.M)
        if m:
            out[field] = float(m.group(1))
    m = re.search(rf"^\s*Requests/sec:\s*{NUM}", block, re.M)
    if m:
        out["rps"] = float(m.group(1))
    pct = {}
    for m in re.finditer(rf"^\s*([0-9.]+)% in {NUM} secs", block, re.M):
        pct[m.group(1)] = float(m.group(2))
    out["pct_s"] = pct
    errors = 0
    err_lines = []
    em = block.find("Error distribution:")
    if em >= 0:
        for m in re.finditer(r"^\s*\[(\d+)\]\s*(.*)$", block[em:], re.M):
            errors += int(m.group(1))
            err_lines.append(m.group(0).strip())
    out["errors"] = errors
    out["error_lines"] = err_lines[:10]
    return out


def summary_text(text):
    text = text.replace("\r", "\n")
    i = text.find("Summary:")
    j = text.find("Watch creation summary:")
    start = min(x for x in (i, j, len(text)) if x >= 0)
    return "\n".join(l for l in text[start:].splitlines() if l.strip() and "Bom" not in l)[:4000]


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

_libc = None


def _pdeathsig():
    """preexec_fn: the child gets SIGTERM if this script dies (even by SIGKILL)."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def free_port(taken):
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


def read_stat_cpu(pid):
    """utime+stime of the whole process (all threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def read_mem_kb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(v.split()[0])
    return out


def _decode_addr(hexaddr):
    ip, port = hexaddr.split(":")
    port = int(port, 16)
    raw = bytes.fromhex(ip)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), port
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words), port


def listening_addrs(pid):
    """TCP sockets in LISTEN state owned by pid: [(addr, port)]."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            t = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and parts[9] in inodes:
                        found.append(_decode_addr(parts[1]))
        except OSError:
            pass
    return found


def is_loopback(addr):
    return addr.startswith("127.") or addr in ("::1", "::ffff:127.0.0.1") or addr.startswith("::ffff:127.")


class Server:
    def __init__(self, role, label, kind, binary, workdir, extra_args, taken_ports):
        self.role, self.label, self.kind, self.binary = role, label, kind, binary
        self.workdir, self.extra_args, self.taken = workdir, extra_args, taken_ports
        self.proc = None
        self.instances = []       # one record per start (restart mode has several)
        self.mem_max = {}
        self.lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------
    def start(self):
        self.port = free_port(self.taken)
        self.data_dir = tempfile.mkdtemp(prefix=f"{self.role}-{self.kind}-", dir=self.workdir)
        url = f"http://127.0.0.1:{self.port}"
        name = f"bench{self.role.lower()}"
        if self.kind == "etcd":
            self.peer_port = free_port(self.taken)
            peer = f"http://127.0.0.1:{self.peer_port}"
            cmd = [self.binary, "--name", name, "--data-dir", self.data_dir,
                   "--listen-client-urls", url, "--advertise-client-urls", url,
                   "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                   "--initial-cluster", f"{name}={peer}", "--initial-cluster-state", "new",
                   "--log-level", "warn"]
        else:
            cmd = [self.binary, "serve", "--name", name, "--data-dir", self.data_dir,
                   "--listen-client-urls", url, "--advertise-client-urls", url]
        cmd += self.extra_args
        self.log_path = os.path.join(self.workdir, f"{self.role}-{self.kind}-{len(self.instances)}.log")
        self.log_file = open(self.log_path, "wb")
        log(f"starting {self.label}: {shlex.join(cmd)}")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_pdeathsig)
        self.inst = {"cmd": cmd, "pid": self.proc.pid, "data_dir": self.data_dir,
                     "log": self.log_path, "mem_max_kb": {}}
        self.instances.append(self.inst)

    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, etcdctl, timeout):
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode} during startup; "
                                   f"log: {self.log_path}\n{tail(self.log_path)}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                r = etcdctl.run(self, ["put", RANGE_KEY, "v" * VAL_SIZE], timeout=10, check=False)
                if r.returncode == 0:
                    break
                last = (r.stderr or r.stdout).strip()
            except OSError as e:
                last = str(e)
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{self.label} not ready after {timeout}s ({last}); log: {self.log_path}")
        addrs = listening_addrs(self.proc.pid)
        self.inst["listening"] = [f"{a}:{p}" for a, p in addrs]
        bad = [f"{a}:{p}" for a, p in addrs if not is_loopback(a)]
        if bad:
            raise RuntimeError(f"{self.label} listens on non-loopback addresses {bad}; refusing to run")
        log(f"{self.label} ready on {self.endpoint()} (pid {self.proc.pid}, listening {self.inst['listening']})")

    def stop(self):
        if self.proc is None:
            return
        if self.alive():
            self.sample_mem()
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log(f"{self.label} did not stop on SIGTERM; SIGKILL pid {self.proc.pid}")
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.inst["exit_code"] = self.proc.returncode
        self.log_file.close()
        self.proc = None

    # -- measurements ---------------------------------------------------------
    def cpu(self):
        return read_stat_cpu(self.proc.pid)

    def sample_mem(self):
        with self.lock:
            if not self.alive():
                return
            try:
                m = read_mem_kb(self.proc.pid)
            except OSError:
                return
            for d in (self.mem_max, self.inst["mem_max_kb"]):
                for k, v in m.items():
                    if v > d.get(k, 0):
                        d[k] = v


class Etcdctl:
    def __init__(self, binary):
        self.binary = binary
        self.env = dict(os.environ, ETCDCTL_API="3")

    def run(self, server, args, timeout=120, check=True):
        cmd = [self.binary, f"--endpoints={server.endpoint()}", "--command-timeout=110s"] + args
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed: {r.stderr.strip() or r.stdout.strip()}")
        return r


def tail(path, n=20):
    try:
        with open(path, "rb") as f:
            return b"".join(f.readlines()[-n:]).decode(errors="replace")
    except OSError:
        return ""


class MemPoller(threading.Thread):
    def __init__(self, servers, interval):
        super().__init__(daemon=True)
        self.servers, self.interval = servers, interval
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.wait(self.interval):
            for s in self.servers:
                s.sample_mem()


# --------------------------------------------------------------------------
# Disk floor
# --------------------------------------------------------------------------

def fdatasync_floor(directory, iterations=2000, size=4096):
    path = os.path.join(directory, "fdatasync-probe")
    buf = os.urandom(size)
    lat = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    try:
        for _ in range(iterations):
            t0 = time.perf_counter_ns()
            os.write(fd, buf)
            os.fdatasync(fd)
            lat.append((time.perf_counter_ns() - t0) / 1000.0)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    return {"iterations": iterations, "bytes": size, "p50_us": q(0.50), "p90_us": q(0.90),
            "p99_us": q(0.99), "mean_us": statistics.fmean(lat), "max_us": lat[-1]}


def fs_of(path):
    best = ("?", "?", "?")
    real = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            mnt = mnt.replace("\\040", " ")
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[1]):
                best = (dev, mnt, fstype)
    return {"device": best[0], "mount": best[1], "fstype": best[2]}


# --------------------------------------------------------------------------
# Running one benchmark
# --------------------------------------------------------------------------

class Runner:
    def __init__(self, bench_bin, timeout_scale):
        self.bench_bin = bench_bin
        self.timeout_scale = timeout_scale
        self.current = None
        # grpc-go logs every connectivity change at INFO otherwise.
        self.env = dict(os.environ, GRPC_GO_LOG_SEVERITY_LEVEL="error", GRPC_GO_LOG_VERBOSITY_LEVEL="0")

    def run(self, server, test, cfg, run_idx):
        args, expected = test.args(cfg)
        cmd = [self.bench_bin, f"--endpoints={server.endpoint()}", "--dial-timeout=10s",
               "--precise"] + args
        # Generous: 60 s + 5 ms per expected result (etcd does ~0.06-0.4 ms each).
        timeout = (60 + expected * 0.005) * self.timeout_scale
        rec = {"test": test.name, "server": server.role, "label": server.label, "run": run_idx,
               "cmd": shlex.join(cmd), "expected_results": expected, "ok": False}
        if not server.alive():
            rec["error"] = f"{server.label} is not running"
            return rec
        load0 = os.getloadavg()[0]
        cpu0 = server.cpu()
        ru0 = os.times()
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=_pdeathsig, env=self.env)
        self.current = proc
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            rec["error"] = f"timeout after {timeout:.0f}s"
        finally:
            self.current = None
        wall = time.monotonic() - t0
        ru1 = os.times()
        cpu1 = server.cpu() if server.alive() else cpu0
        server.sample_mem()
        rec.update({"rc": proc.returncode, "wall_s": wall, "server_cpu_s": cpu1 - cpu0,
                    "client_cpu_s": (ru1.children_user + ru1.children_system)
                    - (ru0.children_user + ru0.children_system),
                    "loadavg1_before": load0, "loadavg1_after": os.getloadavg()[0]})
        parsed = parse_report(out)
        rec["summary"] = summary_text(out)
        err = "\n".join(l for l in err.splitlines() if l.strip() and not l.startswith("INFO: "))
        if err.strip():
            rec["stderr_tail"] = err.strip()[-2000:]
        if parsed:
            rec.update({k: parsed[k] for k in parsed})
            results = expected
            rec["results"] = results
            rec["server_cpu_per_result_us"] = (cpu1 - cpu0) / results * 1e6 if results else None
        if not server.alive():
            rec["error"] = f"{server.label} died (exit {server.proc.returncode}); log {server.log_path}"
        elif proc.returncode != 0 and "error" not in rec:
            rec["error"] = f"benchmark exit {proc.returncode}: {err.strip()[-500:]}"
        elif not parsed or "rps" not in parsed:
            rec.setdefault("error", "no summary in benchmark output")
        elif parsed.get("errors"):
            rec["error"] = f"{parsed['errors']} request errors: {parsed['error_lines'][:3]}"
        rec["ok"] = "error" not in rec
        return rec

    def kill_current(self):
        p = self.current
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass


def clear_state(etcdctl, server):
    """Delete every key, revoke leases, compact to the current revision and
    defragment, so each run starts from the same (small) state. Best effort
    per step: what failed is returned and reported."""
    notes = []
    steps = []
    try:
        etcdctl.run(server, ["del", "", "--from-key=true"])
        steps.append("del")
    except Exception as e:  # noqa: BLE001
        notes.append(f"del failed: {e}")
    try:
        r = etcdctl.run(server, ["lease", "list"], check=True)
        ids = re.findall(r"\b([0-9a-f]{6,16})\b", r.stdout.split("\n", 1)[-1])
        for lid in ids:
            etcdctl.run(server, ["lease", "revoke", lid], check=False)
        steps.append(f"revoke({len(ids)})")
    except Exception as e:  # noqa: BLE001
        notes.append(f"lease list/revoke failed: {e}")
    try:
        r = etcdctl.run(server, ["get", RANGE_KEY, "-w", "json"])
        rev = json.loads(r.stdout)["header"]["revision"]
        etcdctl.run(server, ["compact", str(rev), "--physical"])
        steps.append(f"compact({rev})")
    except Exception as e:  # noqa: BLE001
        notes.append(f"compact failed: {e}")
    try:
        etcdctl.run(server, ["defrag"], timeout=300)
        steps.append("defrag")
    except Exception as e:  # noqa: BLE001
        notes.append(f"defrag failed: {e}")
    etcdctl.run(server, ["put", RANGE_KEY, "v" * VAL_SIZE])
    return steps, notes


# --------------------------------------------------------------------------
# Aggregation and report
# --------------------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ok_runs(records, test, role):
    return [r for r in records if r["test"] == test and r["server"] == role and r["ok"]]


def summarize(records, tests, roles):
    out = {}
    for t in tests:
        out[t.name] = {}
        for role in roles:
            rs = ok_runs(records, t.name, role)
            n_all = len([r for r in records if r["test"] == t.name and r["server"] == role])
            out[t.name][role] = {
                "runs_ok": len(rs), "runs": n_all,
                "rps": med([r.get("rps") for r in rs]),
                "rps_runs": [r.get("rps") for r in rs],
                "avg_ms": med([r.get("avg_s", 0) * 1e3 for r in rs]),
                "p50_ms": med([r["pct_s"].get("50", 0) * 1e3 for r in rs]) if rs else None,
                "p90_ms": med([r["pct_s"].get("90", 0) * 1e3 for r in rs]) if rs else None,
                "p99_ms": med([r["pct_s"].get("99", 0) * 1e3 for r in rs]) if rs else None,
                "cpu_us": med([r.get("server_cpu_per_result_us") for r in rs]),
            }
    return out


def ratio(b, a):
    if a is None or b is None or a == 0:
        return None
    return b / a


def f_rps(x):
    return "–" if x is None else f"{x:,.0f}"


def f_ms(x):
    return "–" if x is None else f"{x:.3f}"


def f_us(x):
    return "–" if x is None else f"{x:.0f}"


def f_ratio(x):
    return "–" if x is None else f"{x:.2f}×"


def f_mib(kb):
    return "–" if not kb else f"{kb / 1024:.1f} MiB"


def paired(records, test, key):
    """Per-run pairs (A, B) of a numeric field, run i of A with run i of B."""
    pairs = []
    runs = sorted({r["run"] for r in records if r["test"] == test})
    for i in runs:
        a = [r for r in records if r["test"] == test and r["server"] == "A" and r["run"] == i and r["ok"]]
        b = [r for r in records if r["test"] == test and r["server"] == "B" and r["run"] == i and r["ok"]]
        if a and b:
            va, vb = key(a[0]), key(b[0])
            if va is not None and vb is not None:
                pairs.append((va, vb))
    return pairs


def evaluate_targets(records, summ, fsync, servers):
    A, B = servers["A"], servers["B"]
    targets = []

    def add(name, threshold, measured, met, per_run):
        n_met = sum(1 for x in per_run if x)
        if met is None:
            verdict = "no data"
        elif met and per_run and n_met == len(per_run):
            verdict = "MET"
        elif met:
            verdict = "met on medians only"
        else:
            verdict = "not met"
        targets.append({"target": name, "threshold": threshold, "measured": measured,
                        "met": met, "met_runs": n_met, "paired_runs": len(per_run),
                        "verdict": verdict})

    rps = lambda r: r.get("rps")
    p99 = lambda r: r["pct_s"].get("99")
    for t in ("put-seq", "put-rand"):
        if t not in summ:
            continue
        rr = ratio(summ[t]["B"]["rps"], summ[t]["A"]["rps"])
        add(f"{t} throughput B/A", f"≥ {TARGET_PUT_RPS:g}×", f_ratio(rr),
            None if rr is None else rr >= TARGET_PUT_RPS,
            [b / a >= TARGET_PUT_RPS for a, b in paired(records, t, rps) if a])
    for t in ("put-seq", "put-rand"):
        if t not in summ:
            continue
        rr = ratio(summ[t]["B"]["p99_ms"], summ[t]["A"]["p99_ms"])
        add(f"{t} p99 latency B/A", f"≤ {TARGET_PUT_P99:g}×", f_ratio(rr),
            None if rr is None else rr <= TARGET_PUT_P99,
            [b / a <= TARGET_PUT_P99 for a, b in paired(records, t, p99) if a])
    for t in ("range-s", "range-l"):
        if t not in summ:
            continue
        rr = ratio(summ[t]["B"]["rps"], summ[t]["A"]["rps"])
        add(f"{t} throughput B/A", f"≥ {TARGET_RANGE_RPS:g}×", f_ratio(rr),
            None if rr is None else rr >= TARGET_RANGE_RPS,
            [b / a >= TARGET_RANGE_RPS for a, b in paired(records, t, rps) if a])
    # Issue 3 (watch and leases).
    for t, thr in (("watch", TARGET_WATCH_EVENTS), ("watch-hi", TARGET_WATCH_EVENTS),
                   ("lease-keepalive", TARGET_KEEPALIVE_RPS)):
        if t not in summ:
            continue
        rr = ratio(summ[t]["B"]["rps"], summ[t]["A"]["rps"])
        add(f"{t} {'events/s' if t.startswith('watch') else 'throughput'} B/A", f"≥ {thr:g}×",
            f_ratio(rr), None if rr is None else rr >= thr,
            [b / a >= thr for a, b in paired(records, t, rps) if a])
    if "watch-latency" in summ:
        rr = ratio(summ["watch-latency"]["B"]["p99_ms"], summ["watch-latency"]["A"]["p99_ms"])
        add("watch-latency p99 B/A", f"≤ {TARGET_WATCH_P99:g}×", f_ratio(rr),
            None if rr is None else rr <= TARGET_WATCH_P99,
            [b / a <= TARGET_WATCH_P99 for a, b in paired(records, "watch-latency", p99) if a])
    if "put-1c" in summ and fsync:
        limit_ms = (fsync["p50_us"] + TARGET_1C_SLACK_US) / 1e3
        p50 = summ["put-1c"]["B"]["p50_ms"]
        per_run = [r["pct_s"].get("50", 1e9) * 1e3 <= limit_ms for r in ok_runs(records, "put-1c", "B")]
        add("put-1c p50 latency of B", f"≤ fdatasync p50 + {TARGET_1C_SLACK_US:.0f} µs = {limit_ms:.3f} ms",
            "–" if p50 is None else f"{p50:.3f} ms", None if p50 is None else p50 <= limit_ms, per_run)
    ha, hb = A.mem_max.get("VmHWM"), B.mem_max.get("VmHWM")
    rr = ratio(hb, ha)
    per_inst = []
    for ia, ib in zip(A.instances, B.instances):
        a, b = ia["mem_max_kb"].get("VmHWM"), ib["mem_max_kb"].get("VmHWM")
        if a and b:
            per_inst.append(b / a <= TARGET_RSS)
    add("server peak RSS B/A", f"≤ {TARGET_RSS:g}×", f"{f_ratio(rr)} ({f_mib(hb)} / {f_mib(ha)})",
        None if rr is None else rr <= TARGET_RSS, per_inst)
    return targets


def render_markdown(ctx):
    A, B = ctx["servers"]["A"], ctx["servers"]["B"]
    la, lb = A.label, B.label
    summ, tests = ctx["summary"], ctx["tests"]
    L = []
    L.append(f"# {lb} vs {la}: side-by-side benchmark")
    L.append("")
    L.append("```")
    L.append(ctx["command"])
    L.append("```")
    L.append("")
    env = ctx["env"]
    L.append(f"* Started {env['started']}, finished {env.get('finished', '?')}; host {env['host']}, "
             f"{env['cpus']} CPUs, load average at start {env['loadavg_start']}, at end {env.get('loadavg_end', '?')}.")
    L.append(f"* A = **{la}** (`{A.binary}`, {env['versions'].get('A', '?')}); "
             f"B = **{lb}** (`{B.binary}`, {env['versions'].get('B', '?')}).")
    L.append(f"* Load generator: etcd 3.4 `tools/benchmark` (`{ctx['bench_bin']}`), every command with "
             f"`--precise`, keys {KEY_SIZE} B, values {VAL_SIZE} B; {ctx['cfg_desc']}.")
    L.append(f"* {ctx['runs']} run{'s' if ctx['runs'] != 1 else ''} per server, interleaved test by test (A B in even runs, B A in odd runs); "
             f"figures are medians over the successful runs. State between runs: {ctx['reset_desc']}")
    fs = ctx["fsync"]
    fsx = ctx.get("fsync_end")
    extra = (f"; at the end: p50 {fsx['p50_us']:.0f} µs, p99 {fsx['p99_us']:.0f} µs" if fsx else "")
    if fs:
        L.append(f"* Disk floor, 4 KiB append + fdatasync × {fs['iterations']} in the data dirs' filesystem "
                 f"({ctx['fs']['fstype']} on {ctx['fs']['device']}): p50 {fs['p50_us']:.0f} µs, "
                 f"p99 {fs['p99_us']:.0f} µs{extra}.")
    if ctx.get("interrupted"):
        L.append(f"* **Incomplete:** {ctx['interrupted']}")
    L.append("")
    L.append("## Medians per test")
    L.append("")
    L.append(f"| test | req/s {la} | req/s {lb} | ratio | p99 ms {la} | p99 ms {lb} | ratio "
             f"| CPU µs/req {la} | CPU µs/req {lb} | ratio |")
    L.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for t in tests:
        a, b = summ[t.name]["A"], summ[t.name]["B"]
        show_rps = t.kind != "latency"
        show_lat = t.kind != "events"
        L.append("| " + " | ".join([
            t.title,
            f_rps(a["rps"]) if show_rps else "–", f_rps(b["rps"]) if show_rps else "–",
            f_ratio(ratio(b["rps"], a["rps"])) if show_rps else "–",
            f_ms(a["p99_ms"]) if show_lat else "–", f_ms(b["p99_ms"]) if show_lat else "–",
            f_ratio(ratio(b["p99_ms"], a["p99_ms"])) if show_lat else "–",
            f_us(a["cpu_us"]), f_us(b["cpu_us"]), f_ratio(ratio(b["cpu_us"], a["cpu_us"])),
        ]) + " |")
    L.append("")
    L.append("Ratios are B/A (tidemark/etcd): above 1× is better for req/s, below 1× is better for "
             "latency and CPU. CPU µs/req = server utime+stime during the run / results "
             "(for watch: per event delivered; for watch-latency: per watcher notification).")
    L.append("")
    L.append("## Latency distribution and run-to-run spread")
    L.append("")
    L.append("| test | server | ok runs | avg ms | p50 ms | p90 ms | p99 ms | req/s of each run |")
    L.append("|---|---|--:|--:|--:|--:|--:|---|")
    for t in tests:
        for role, srv in (("A", A), ("B", B)):
            s = summ[t.name][role]
            runs = ", ".join(f_rps(x) for x in s["rps_runs"]) if t.kind != "latency" else "–"
            if t.kind == "events":
                L.append(f"| {t.title} | {srv.label} | {s['runs_ok']}/{s['runs']} | – | – | – | – | {runs} |")
            else:
                L.append(f"| {t.title} | {srv.label} | {s['runs_ok']}/{s['runs']} | {f_ms(s['avg_ms'])} | "
                         f"{f_ms(s['p50_ms'])} | {f_ms(s['p90_ms'])} | {f_ms(s['p99_ms'])} | {runs} |")
    L.append("")
    L.append("## Memory (sampled every %.2g s over the whole matrix)" % ctx["mem_interval"])
    L.append("")
    L.append("| server | peak RSS (VmHWM) | max RssAnon | max RssFile | instances |")
    L.append("|---|--:|--:|--:|--:|")
    for srv in (A, B):
        m = srv.mem_max
        L.append(f"| {srv.label} | {f_mib(m.get('VmHWM'))} | {f_mib(m.get('RssAnon'))} | "
                 f"{f_mib(m.get('RssFile'))} | {len(srv.instances)} |")
    L.append("")
    L.append("RssFile counts file pages mapped into the process (etcd mmaps its bbolt database), "
             "RssAnon the heap.")
    L.append("")
    L.append("## Targets (B relative to A)")
    L.append("")
    L.append("| target | threshold | measured (medians) | verdict | met in paired runs |")
    L.append("|---|---|---|---|--:|")
    for tg in ctx["targets"]:
        L.append(f"| {tg['target']} | {tg['threshold']} | {tg['measured']} | {tg['verdict']} | "
                 f"{tg['met_runs']}/{tg['paired_runs']} |")
    L.append("")
    L.append("Noise: on these shared 2-core machines run-to-run spread is 20–80 % in throughput; "
             "ratios under ~1.5× are inconclusive unless they repeat in every paired run. "
             "1-client latency and CPU per request are the steadiest figures.")
    failed = [r for r in ctx["records"] if not r["ok"]]
    if failed or ctx["clear_notes"]:
        L.append("")
        L.append("## Problems")
        L.append("")
        for r in failed:
            L.append(f"* run {r['run']} {r['test']} on {r['label']}: {r.get('error')}")
        for n in ctx["clear_notes"]:
            L.append(f"* {n}")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def version_of(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        line = (r.stdout or r.stderr).strip().splitlines()
        return line[0].strip() if line else "?"
    except Exception:  # noqa: BLE001
        return "?"


def find_bench_bin(arg):
    if arg:
        return arg
    cand = DEFAULT_CACHE / "etcd-benchmark"
    if cand.exists():
        return str(cand)
    log("etcd-benchmark not found; running bench/build-etcd-benchmark.sh")
    r = subprocess.run([str(REPO / "bench" / "build-etcd-benchmark.sh")], stdout=subprocess.PIPE,
                       text=True, check=True)
    return r.stdout.strip().splitlines()[-1]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs per server (default 3, at least 3 advised)")
    p.add_argument("--total", type=int, default=None,
                   help="requests per 100-client test (default 50000; --quick: 2000)")
    p.add_argument("--total-1client", type=int, default=None, dest="total_1c",
                   help="requests per 1-client test (default 10000; --quick: 300)")
    p.add_argument("--quick", action="store_true", help="small totals, for smoke testing only")
    p.add_argument("--watch", action="store_true",
                   help="also run watch (1000 watchers, events/s), watch-latency and lease-keepalive")
    p.add_argument("--tests", default=None,
                   help="comma-separated subset of: " + ",".join(t.name for t in TESTS))
    p.add_argument("--etcd-bin", default="/usr/bin/etcd", help="etcd 3.4 server (A)")
    p.add_argument("--tidemark-bin", default=os.environ.get("TIDEMARK_BIN",
                                                            str(REPO / "build" / "src" / "cli" / "tidemark")),
                   help="tidemark binary (B); env TIDEMARK_BIN; default build/src/cli/tidemark")
    p.add_argument("--b-etcd", action="store_true",
                   help="run etcd as B as well (etcd vs etcd: validates the harness, shows the noise); "
                        "also implied by --tidemark-bin=/path/to/etcd")
    p.add_argument("--b-etcd-bin", default=None, help="etcd binary for B with --b-etcd (default --etcd-bin)")
    p.add_argument("--b-arg", action="append", default=[], dest="b_args",
                   help="extra argument for server B (repeatable), e.g. --b-arg=--foo=1")
    p.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    p.add_argument("--bench-bin", default=None,
                   help="etcd benchmark binary (default: cache dir, built by build-etcd-benchmark.sh)")
    p.add_argument("--reset", choices=("clear", "restart"), default="clear",
                   help="between runs: 'clear' = delete all keys, revoke leases, compact, defrag "
                        "(same server processes for the whole matrix; default); 'restart' = fresh "
                        "servers with fresh data dirs for every run")
    p.add_argument("--workdir", default=None,
                   help="parent of the temporary data dirs (default: system temp dir); its filesystem is "
                        "the one whose fdatasync floor is measured")
    p.add_argument("--keep-data", action="store_true", help="keep data dirs and server logs")
    p.add_argument("--fsync-iterations", type=int, default=2000)
    p.add_argument("--mem-interval", type=float, default=0.2, help="RSS sampling period, s")
    p.add_argument("--timeout-scale", type=float, default=1.0, help="scale per-benchmark timeouts")
    p.add_argument("--out-json", default=None, help="raw per-run numbers (default: cache dir/results/…)")
    p.add_argument("--out-md", default=None, help="also write the Markdown report here")
    a = p.parse_args(argv)
    if a.runs < 1:
        p.error("--runs must be ≥ 1")
    if a.total is None:
        a.total = 2000 if a.quick else 50000
    if a.total_1c is None:
        a.total_1c = 300 if a.quick else 10000
    a.watch_events = 4 * a.total            # events delivered in the watch test
    a.watch_put_rate = 5000                 # puts/s feeding 100 watchers per key
    a.watch_latency_puts = max(100, a.total // 50)
    a.watch_latency_rate = 500
    return a


class Interrupted(Exception):
    pass


def main(argv):
    args = parse_args(argv)
    command = shlex.join([sys.executable, sys.argv[0]] + argv)
    if args.tests:
        wanted = args.tests.split(",")
        unknown = set(wanted) - {t.name for t in TESTS}
        if unknown:
            sys.exit(f"unknown tests: {sorted(unknown)}")
        tests = [t for t in TESTS if t.name in wanted]
    else:
        tests = [t for t in TESTS if t.group == "core" or args.watch]

    for path, what in ((args.etcd_bin, "etcd"), (args.etcdctl, "etcdctl")):
        if not os.access(path, os.X_OK):
            sys.exit(f"{what} not found at {path}")
    if not args.b_etcd and os.path.basename(args.tidemark_bin) == "etcd":
        args.b_etcd, args.b_etcd_bin = True, args.tidemark_bin   # --tidemark-bin /usr/bin/etcd
    if args.b_etcd:
        b_kind, b_bin, b_label, a_label = "etcd", args.b_etcd_bin or args.etcd_bin, "etcd-B", "etcd-A"
    else:
        b_kind, b_bin, b_label, a_label = "tidemark", args.tidemark_bin, "tidemark", "etcd"
        if not os.access(b_bin, os.X_OK):
            sys.exit(f"tidemark binary not found at {b_bin}: build it, set TIDEMARK_BIN or --tidemark-bin, "
                     f"or use --b-etcd to test the harness etcd-vs-etcd")
    bench_bin = find_bench_bin(args.bench_bin)

    versions = {"A": version_of([args.etcd_bin, "--version"]), "B": version_of([b_bin, "--version"])}
    started = datetime.datetime.now().astimezone()
    out_json = args.out_json or str(DEFAULT_CACHE / "results" /
                                    f"compare-{started.strftime('%Y%m%d-%H%M%S')}.json")
    workdir = tempfile.mkdtemp(prefix="tidemark-bench-", dir=args.workdir)
    fs = fs_of(workdir)
    if fs["fstype"] in ("tmpfs", "ramfs", "overlay"):
        log(f"warning: {workdir} is on {fs['fstype']}; fdatasync numbers will not reflect a disk")
    taken = set()
    A = Server("A", a_label, "etcd", args.etcd_bin, workdir, [], taken)
    B = Server("B", b_label, b_kind, b_bin, workdir, args.b_args, taken)
    servers = {"A": A, "B": B}
    etcdctl = Etcdctl(args.etcdctl)
    runner = Runner(bench_bin, args.timeout_scale)
    poller = MemPoller([A, B], args.mem_interval)
    records, clear_log, clear_notes = [], [], []
    interrupted = None
    fsync_end = None
    env = {"started": started.isoformat(timespec="seconds"), "host": platform.node(),
           "cpus": os.cpu_count(), "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
           "kernel": platform.release(), "python": sys.version.split()[0],
           "versions": versions}

    fsync = None

    def start_both():
        for s in (A, B):
            s.start()
        for s in (A, B):
            s.wait_ready(etcdctl, 60)
        # Short warm-up, not recorded (first-connection and allocator effects).
        for s in (A, B):
            warm = Test("warmup", "warmup", "core", "rps",
                        lambda c: _put(c, [f"--key-space-size={KEY_SPACE}"], _multi(c), min(c.total, 2000)))
            r = runner.run(s, warm, args, -1)
            if not r["ok"]:
                raise RuntimeError(f"warm-up on {s.label} failed: {r.get('error')}")

    def on_signal(signum, frame):
        raise Interrupted(f"signal {signal.Signals(signum).name}")
    # SIGINT too: a background job may have inherited SIGINT=ignored.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        log(f"workdir {workdir} ({fs['fstype']} on {fs['device']}); measuring fdatasync floor")
        fsync = fdatasync_floor(workdir, args.fsync_iterations)
        log(f"fdatasync 4 KiB append: p50 {fsync['p50_us']:.0f} µs, p99 {fsync['p99_us']:.0f} µs")
        start_both()
        poller.start()
        for run in range(args.runs):
            if run > 0:
                if args.reset == "restart":
                    for s in (A, B):
                        s.stop()
                        if not args.keep_data:
                            shutil.rmtree(s.data_dir, ignore_errors=True)
                    start_both()
                else:
                    for s in (A, B):
                        t0 = time.monotonic()
                        steps, notes = clear_state(etcdctl, s)
                        clear_log.append({"run": run, "server": s.role, "steps": steps, "notes": notes,
                                          "seconds": time.monotonic() - t0})
                        clear_notes += [f"before run {run}, {s.label}: {n}" for n in notes]
            order = (A, B) if run % 2 == 0 else (B, A)
            for t in tests:
                for s in order:
                    rec = runner.run(s, t, args, run)
                    records.append(rec)
                    if rec["ok"]:
                        lat = rec["pct_s"].get("99")
                        log(f"run {run} {t.name:15s} {s.label:9s} {rec['rps']:10.0f} /s  "
                            f"p99 {lat * 1e3 if lat is not None else float('nan'):8.3f} ms  "
                            f"cpu {rec['server_cpu_per_result_us'] or 0:6.0f} µs/req")
                    else:
                        log(f"run {run} {t.name:15s} {s.label:9s} FAILED: {rec.get('error')}")
                    if not s.alive():
                        raise RuntimeError(f"{s.label} died; log {s.log_path}:\n{tail(s.log_path)}")
        fsync_end = fdatasync_floor(workdir, args.fsync_iterations)
    except (KeyboardInterrupt, Interrupted) as e:
        interrupted = f"interrupted ({e or 'Ctrl-C'}) after {len(records)} benchmark runs"
        log(interrupted)
    except Exception as e:  # noqa: BLE001
        interrupted = f"aborted: {e}"
        log(interrupted)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        runner.kill_current()
        poller.stop_ev.set()
        for s in (A, B):
            try:
                s.stop()
            except Exception as e:  # noqa: BLE001
                log(f"stopping {s.label}: {e}")
        if interrupted or not all(r["ok"] for r in records):
            # Keep the server logs next to the JSON before the workdir goes.
            logdir = Path(out_json).with_suffix("").as_posix() + "-logs"
            os.makedirs(logdir, exist_ok=True)
            for srv in (A, B):
                for inst in srv.instances:
                    try:
                        shutil.copy(inst["log"], logdir)
                        inst["log"] = os.path.join(logdir, os.path.basename(inst["log"]))
                    except OSError:
                        pass
            log(f"server logs copied to {logdir}")
        if not args.keep_data:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept {workdir}")
        signal.signal(signal.SIGINT, signal.default_int_handler)

    env["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    env["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    summ = summarize(records, tests, ("A", "B"))
    targets = evaluate_targets(records, summ, fsync, servers)
    reset_desc = ("the same two server processes serve the whole matrix (fresh data dir each); before "
                  "every run after the first, all keys are deleted, leases revoked, the store compacted "
                  "to the current revision (--physical) and defragmented, then the range key is put back"
                  if args.reset == "clear" else
                  "fresh server processes with fresh data dirs for every run; peak RSS is the maximum "
                  "over the instances")
    cfg_desc = (f"100-client tests (--conns=10 --clients=100) {args.total} requests each, "
                f"1-client tests (--conns=1 --clients=1) {args.total_1c}" +
                (f", watch {args.watch_events} events, watch-latency {args.watch_latency_puts} puts "
                 f"at {args.watch_latency_rate}/s" if any(t.group == "watch" for t in tests) else "") +
                (" (--quick)" if args.quick else ""))
    ctx = {"command": command, "env": env, "servers": servers, "summary": summ, "tests": tests,
           "targets": targets, "fsync": fsync, "fsync_end": fsync_end, "fs": fs, "records": records,
           "bench_bin": bench_bin, "runs": args.runs, "reset_desc": reset_desc, "cfg_desc": cfg_desc,
           "mem_interval": args.mem_interval, "interrupted": interrupted, "clear_notes": clear_notes}
    md = render_markdown(ctx)
    print(md)
    if args.out_md:
        Path(args.out_md).write_text(md)
    doc = {
        "command": command, "argv": argv, "complete": interrupted is None, "interrupted": interrupted,
        "env": env, "filesystem": fs, "fdatasync": fsync, "fdatasync_end": fsync_end,
        "config": {k: v for k, v in vars(args).items()},
        "bench_bin": bench_bin, "tests": [t.name for t in tests],
        "servers": {role: {"label": s.label, "kind": s.kind, "binary": s.binary,
                           "mem_max_kb": s.mem_max, "instances": s.instances}
                    for role, s in servers.items()},
        "clear_between_runs": clear_log, "runs": records, "summary": summ, "targets": targets,
        "markdown": md,
    }
    Path(out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(out_json).write_text(json.dumps(doc, indent=1, default=str))
    log(f"raw numbers: {out_json}")
    return 0 if interrupted is None and all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
