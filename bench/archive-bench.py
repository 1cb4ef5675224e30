#!/usr/bin/python3
"""Archive and restore benchmark: the "Speed" targets of the archive issue.

  (a) restore replay rate (entries/s, median of N restores of one archive)
  (b) restore of 1M keys + 1M revisions from a directory archive (seconds)
  (c) put throughput with --archive-url file:// vs archive off: in simultaneous
      pairs (both servers loaded at once, with an archive-off A/A control pair;
      mean and 95 % CI), and one server at a time (interleaved, medians)
  (d) put p99 with --archive-sync vs archive off (open loop at a fixed rate)
  (e) tidemark_archive_lag_seconds p50/p99 under closed-loop (max-rate) puts

Before every measured run of (c)-(e) the script flushes dirty pages (sync) and
waits (at most 20 s) until the machine is below 15 % CPU, so one configuration's
leftover background work (RocksDB compactions, writeback) is not charged to the
next one; "machine still busy" in the log says when that did not happen.

Every server is tidemark on 127.0.0.1 with a free port, in a temporary work dir,
stopped at the end (also on error or Ctrl-C). The load generator is `tidemark
bench run`. Prints a Markdown table and the exact command; --json writes every
raw number. Stdlib only:  /usr/bin/python3 bench/archive-bench.py [--quick]
"""

import argparse
import json
import os
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
import urllib.request
from pathlib import Path

from bench_common import free_port, make_log

REPO = Path(__file__).resolve().parent.parent

ROWS = [
    ("a", "restore replay rate", ">= 100,000 entries/s"),
    ("b", "restore 1M keys + 1M revisions (directory)", "<= 60 s"),
    ("c", "put throughput cost of archiving (file://)", "<= 5 %"),
    ("d", "p99 added by --archive-sync (file://)", "<= 10 ms"),
    ("e", "archive lag p50 / p99 at max put rate (file://)", "<= 250 ms / <= 1 s"),
    ("e3", "archive lag p50 / p99 at max put rate (s3rver)", "<= 250 ms / <= 1 s"),
]
S3RVER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "test", "archive", "node", "node_modules", ".bin", "s3rver")


class S3rver:
    """npm s3rver (installed by `npm ci` in test/archive/node) on 127.0.0.1, for (e3)."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.port = free_port()
        self.proc = None

    def start(self, timeout=20):
        os.makedirs(self.data_dir, exist_ok=True)
        with open(self.data_dir + ".log", "ab") as logf:
            self.proc = subprocess.Popen(
                [S3RVER, "-d", self.data_dir, "-a", "127.0.0.1", "-p", str(self.port),
                 "--configure-bucket", "archive"], stdout=logf, stderr=logf,
                stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"s3rver exited ({self.proc.returncode}); see {self.data_dir}.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("s3rver did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


log = make_log("archive-bench")


def loadavg():
    return os.getloadavg()[0]


class Server:
    def __init__(self, binary, data_dir, extra=()):
        self.binary = binary
        self.data_dir = data_dir
        self.extra = list(extra)
        self.proc = None
        self.port = None
        self.log_path = data_dir + ".log"

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=30):
        for _ in range(5):
            self.port = free_port()
            url = f"http://{self.endpoint}"
            with open(self.log_path, "ab") as logf:
                self.proc = subprocess.Popen(
                    [self.binary, "serve", "--name", "archbench", "--data-dir", self.data_dir,
                     "--listen-client-urls", url, "--advertise-client-urls", url, *self.extra],
                    stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen(f"http://{self.endpoint}/health", timeout=1) as r:
                        if r.status == 200:
                            return self
                except OSError:
                    pass
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.stop()
                raise RuntimeError(f"server not ready in {timeout}s; see {self.log_path}")
            if "Address already in use" not in Path(self.log_path).read_text(errors="replace"):
                raise RuntimeError(f"server exited ({self.proc.returncode}); see {self.log_path}")
        raise RuntimeError("no free port after 5 attempts")

    def stop(self, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def metric(self, name):
        with urllib.request.urlopen(f"http://{self.endpoint}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    return float(line.rsplit(" ", 1)[1])
        return None


class Bench:
    def __init__(self, args):
        self.args = args
        self.binary = args.tidemark_bin
        self.work = args.workdir or tempfile.mkdtemp(prefix="archive-bench-")
        os.makedirs(self.work, exist_ok=True)
        self.servers = []
        self.results = {"load_before": loadavg(), "config": vars(args).copy()}
        self.seq = 0

    def path(self, name):
        self.seq += 1
        return os.path.join(self.work, f"{self.seq:02d}-{name}")

    def server(self, name, extra=()):
        s = Server(self.binary, self.path(name), extra).start()
        self.servers.append(s)
        return s

    def stop_all(self):
        for s in self.servers:
            s.stop()
        if getattr(self, "s3", None) is not None:
            self.s3.stop()

    def bench_run(self, endpoint, *flags, timeout=1800, out=None):
        out = out or self.path("bench")
        cmd = [self.binary, "bench", "run", "--endpoint", endpoint, "--test-mode", "--reps", "1",
               "--progress", "never", "--out", out, *flags]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
        with open(os.path.join(out, "results.json")) as f:
            rep = json.load(f)["repetitions"][0]
        shutil.rmtree(out, ignore_errors=True)
        if rep.get("errors"):
            raise RuntimeError(f"{rep['errors']} errors: {rep.get('first_error')}")
        return rep

    def restore(self, url, data_dir, binary=None):
        cmd = [binary or self.binary, "restore", "--archive-url", url, "--data-dir", data_dir, "--latest"]
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        wall = time.monotonic() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
        out = p.stdout + p.stderr
        m = re.search(r"replayed:\s+(\d+) entries from (\d+) chunks", out)
        d = re.search(r"duration:\s+([\d.]+) s", out)
        k = re.search(r"keys:\s+(\d+)", out)
        r = re.search(r"revision:\s+(\d+)", out)
        return {"wall_s": wall, "entries": int(m.group(1)), "chunks": int(m.group(2)),
                "duration_s": float(d.group(1)), "keys": int(k.group(1)),
                "revision": int(r.group(1))}

    # ---- (a) and (b) ------------------------------------------------------
    def build_archive(self, name, requests, key_space, key_dist, value_size):
        arch = self.path(name + "-archive")
        src = self.server(name + "-src", ["--archive-url", f"file://{arch}",
                                          "--archive-base-every-entries", "1000000000"])
        t0 = time.monotonic()
        rep = self.bench_run(src.endpoint, "--workload", "put", "--key-space", str(key_space),
                             "--key-dist", key_dist, "--value-size", str(value_size),
                             "--requests", str(requests), "--warmup", "0s",
                             "--conns", "4", "--clients", "64")
        log(f"{name}: {requests} puts in {time.monotonic() - t0:.1f}s "
            f"({rep['throughput']:.0f}/s); stopping the source (ships the rest)")
        src.stop()
        return f"file://{arch}"

    def restore_rate(self):
        a = self.args
        url = self.build_archive("a", a.replay_entries, a.replay_keys, "uniform", 256)
        runs, base_runs = [], []
        for i in range(a.restores):
            r = self.restore(url, self.path(f"a-restored{i}"))
            r["rate"] = r["entries"] / r["duration_s"]
            log(f"(a) restore {i + 1}/{a.restores}: {r['entries']} entries in {r['duration_s']:.2f}s "
                f"= {r['rate']:.0f} entries/s (load {loadavg():.2f})")
            runs.append(r)
            if a.compare_bin:  # interleaved: the baseline binary on the same archive
                r = self.restore(url, self.path(f"a-baseline{i}"), a.compare_bin)
                r["rate"] = r["entries"] / r["duration_s"]
                log(f"(a) baseline restore {i + 1}: {r['rate']:.0f} entries/s")
                base_runs.append(r)
        self.results["a"] = {"runs": runs, "median_rate": statistics.median(x["rate"] for x in runs)}
        if base_runs:
            self.results["a"]["baseline_runs"] = base_runs
            self.results["a"]["baseline_median_rate"] = statistics.median(x["rate"] for x in base_runs)

    def restore_big(self):
        a = self.args
        # seq keys over a key space of the same size: every put a new key,
        # so N revisions and N keys.
        url = self.build_archive("b", a.big_entries, a.big_entries, "seq", 100)
        r = self.restore(url, self.path("b-restored"))
        log(f"(b) restore: {r['keys']} keys, revision {r['revision']}, {r['entries']} entries in "
            f"{r['wall_s']:.1f}s wall (load {loadavg():.2f})")
        self.results["b"] = r
        if a.compare_bin:
            rb = self.restore(url, self.path("b-baseline"), a.compare_bin)
            log(f"(b) baseline restore: {rb['wall_s']:.1f}s wall")
            r["baseline"] = rb

    # ---- (c) paired: both configurations under load at the same moment -------
    def paired(self):
        """(c) with the host's noise cancelled: two servers are loaded at the same
        time by two `tidemark bench run`s (each half the sequential load), so a
        slow second on this VM slows both. Three servers (two archive off, one
        archiving to file://) take turns in three pairs per repetition, off1/off2
        being the A/A control: its spread is the noise floor. Each server takes
        part in two pairs per repetition, so all three age (grow) alike.

        What this design cannot see: contention for the one disk, which both
        servers of a pair share (the sequential runs in live() include it), and
        a small scheduler bias - with per-thread CPU fairness the archiving
        server's extra thread earns it a little more CPU. The CPU cost per put
        (the same pairs, from /proc) has no such bias and is reported too."""
        a = self.args
        srv = {"off1": self.server("p-off1"), "off2": self.server("p-off2"),
               "async": self.server("p-async", ["--archive-url",
                                                f"file://{self.path('p-async-archive')}"])}
        flags = ["--workload", "put", "--key-space", "100000", "--value-size", "256",
                 "--warmup", a.warmup, "--duration", a.duration, "--conns", "5", "--clients", "50"]
        pairs = [("aa", "off1", "off2"), ("ab", "off1", "async"), ("ab", "off2", "async")]
        res = {k: {"tput_cost": [], "cpu_cost": []} for k in ("aa", "ab")}
        runs, archiver_us = [], []
        for rep in range(a.pair_reps):
            for kind, x, y in (pairs if rep % 2 == 0 else pairs[::-1]):
                settle()
                t0 = thread_cpu_seconds(srv["async"].proc.pid, "archiver")
                outs = {n: self.path("bench") for n in (x, y)}
                got, errs = {}, []

                def go(n):
                    try:
                        got[n] = self.bench_run(srv[n].endpoint, *flags, out=outs[n])
                    except Exception as e:  # noqa: BLE001 - re-raised below
                        errs.append(e)
                # Alternate which load starts first.
                ts = [threading.Thread(target=go, args=(n,)) for n in ((x, y) if rep % 2 else (y, x))]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
                if errs:
                    raise errs[0]
                t1 = thread_cpu_seconds(srv["async"].proc.pid, "archiver")
                tx, ty = got[x]["throughput"], got[y]["throughput"]
                cx, cy = got[x].get("cpu_us_per_op") or 0.0, got[y].get("cpu_us_per_op") or 0.0
                res[kind]["tput_cost"].append(100.0 * (1 - ty / tx))
                if cx and cy:
                    res[kind]["cpu_cost"].append(100.0 * (cy / cx - 1))
                if y == "async" and t0 is not None and t1 is not None:
                    puts = got[y].get("ok", 0) + got[y].get("warmup_requests", 0)
                    if puts:
                        archiver_us.append((t1 - t0) * 1e6 / puts)
                runs.append({"rep": rep + 1, "pair": [x, y], "throughput": [tx, ty],
                             "cpu_us_per_put": [cx, cy]})
                log(f"rep {rep + 1} pair {x}+{y}: {tx:.0f} + {ty:.0f} puts/s, "
                    f"{y} costs {res[kind]['tput_cost'][-1]:+.1f} % throughput, server CPU per put "
                    f"{cx:.0f} / {cy:.0f} us (load {loadavg():.2f})")
        for s in srv.values():
            s.stop()
        self.results["c_paired"] = {
            "runs": runs, "archiver_us_per_put": archiver_us,
            **{f"{k}_{m}": {"per_pair": v, **mean_ci(v)} for k in res for m, v in res[k].items()},
        }

    # ---- (c), (d), (e) -------------------------------------------------------
    def live(self):
        a = self.args
        cfgs = {
            "off": self.server("off"),
            "async": None,
            "sync": None,
        }
        cfgs["async"] = self.server("async", ["--archive-url", f"file://{self.path('async-archive')}"])
        cfgs["sync"] = self.server("sync", ["--archive-url", f"file://{self.path('sync-archive')}",
                                            "--archive-sync"])
        s3 = None
        if os.path.exists(S3RVER):
            s3 = self.s3 = S3rver(self.path("s3rver")).start()
            # s3rver's fixed credentials, through the environment (one source, as a unit).
            os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "S3RVER"
            cfgs["s3"] = self.server("s3", ["--archive-url", "s3://archive/bench",
                                            "--archive-s3-endpoint", f"http://127.0.0.1:{s3.port}"])
        else:
            log(f"s3rver not installed ({S3RVER}): (e3) not measured; run `npm ci` in test/archive/node")
        order = ["off", "async", "sync"]
        tput = {k: [] for k in order}
        cpu = {k: [] for k in order}  # server CPU us per put (closed loop)
        p99c = {k: [] for k in order}
        lat = {k: {"p50": [], "p99": []} for k in order}
        lag = []
        lag_s3 = []
        s3_tput = []
        common = ["--workload", "put", "--key-space", "100000", "--value-size", "256",
                  "--warmup", a.warmup]
        for rep in range(a.reps):
            rot = order[rep % 3:] + order[:rep % 3]
            for name in rot:
                s = cfgs[name]
                settle()
                sampler = LagSampler(s) if name == "async" else None
                r = self.bench_run(s.endpoint, *common, "--duration", a.duration,
                                   "--conns", "10", "--clients", "100")
                if sampler:
                    lag.extend(sampler.stop())
                tput[name].append(r["throughput"])
                cpu[name].append(r.get("cpu_us_per_op") or 0.0)
                p99c[name].append(r["latency"]["p99_ms"])
                log(f"rep {rep + 1} {name:5s} closed loop: {r['throughput']:.0f} puts/s, "
                    f"p99 {r['latency']['p99_ms']:.1f} ms (load {loadavg():.2f})")
            if "s3" in cfgs:
                settle()
                sampler = LagSampler(cfgs["s3"])
                r = self.bench_run(cfgs["s3"].endpoint, *common, "--duration", a.duration,
                                   "--conns", "10", "--clients", "100")
                lag_s3.extend(sampler.stop())
                s3_tput.append(r["throughput"])
                log(f"rep {rep + 1} s3    closed loop: {r['throughput']:.0f} puts/s")
            for name in rot:
                settle()
                r = self.bench_run(cfgs[name].endpoint, *common, "--duration", a.duration,
                                   "--rate", str(a.rate), "--conns", "10", "--clients", "100")
                lat[name]["p50"].append(r["latency"]["p50_ms"])
                lat[name]["p99"].append(r["latency"]["p99_ms"])
                log(f"rep {rep + 1} {name:5s} open loop {a.rate}/s: p50 "
                    f"{r['latency']['p50_ms']:.2f} ms, p99 {r['latency']['p99_ms']:.2f} ms")
        med = statistics.median
        # Paired per repetition (the three runs of one repetition are seconds
        # apart, so load drifting on a shared box cancels out), then the median.
        cost = [100.0 * (1 - x / o) for x, o in zip(tput["async"], tput["off"])]
        added = [y - o for y, o in zip(lat["sync"]["p99"], lat["off"]["p99"])]
        self.results["c"] = {"throughput": tput, "p99_closed_ms": p99c,
                             "median": {k: med(v) for k, v in tput.items()},
                             "cost_pct_per_rep": cost, "median_cost_pct": med(cost),
                             "cpu_us_per_put": cpu,
                             "median_cpu_us_per_put": {k: med(v) for k, v in cpu.items()}}
        self.results["d"] = {"rate": a.rate, "latency_ms": lat,
                             "median_p99": {k: med(v["p99"]) for k, v in lat.items()},
                             "median_p50": {k: med(v["p50"]) for k, v in lat.items()},
                             "added_p99_ms_per_rep": added, "median_added_p99_ms": med(added)}
        lag.sort()
        self.results["e"] = {"samples": len(lag), "p50_s": pct(lag, 50), "p99_s": pct(lag, 99),
                             "max_s": lag[-1] if lag else None,
                             "rate": med(tput["async"])}
        if s3 is not None:
            lag_s3.sort()
            self.results["e3"] = {"samples": len(lag_s3), "p50_s": pct(lag_s3, 50),
                                  "p99_s": pct(lag_s3, 99),
                                  "max_s": lag_s3[-1] if lag_s3 else None,
                                  "rate": med(s3_tput)}
            cfgs["s3"].stop()
            s3.stop()

    # ---- report ---------------------------------------------------------------
    def table(self):
        r = self.results
        rows = []

        def row(key, measured, ok):
            label, goal = next((lab, g) for k, lab, g in ROWS if k == key)
            verdict = "n/a" if ok is None else ("met" if ok else "**missed**")
            rows.append(f"| ({key}) {label} | {measured} | {goal} | {verdict} |")

        if "a" in r:
            rates = ", ".join(f"{x['rate']:.0f}" for x in r["a"]["runs"])
            base = ""
            if "baseline_median_rate" in r["a"]:
                base = f"; baseline binary {r['a']['baseline_median_rate']:.0f}"
            row("a", f"{r['a']['median_rate']:.0f} entries/s (median of {rates}{base})",
                r["a"]["median_rate"] >= 100000)
        else:
            row("a", "not run", None)
        if "b" in r:
            b = r["b"]
            scale = b["entries"] / 1e6
            note = "" if scale >= 0.999 else f" (scaled run: {b['entries']} revisions)"
            base = f"; baseline binary {b['baseline']['wall_s']:.1f} s" if "baseline" in b else ""
            row("b", f"{b['wall_s']:.1f} s for {b['keys']} keys, {b['entries']} revisions "
                     f"({b['entries'] / b['duration_s']:.0f} entries/s{base}){note}",
                b["wall_s"] <= 60 if scale >= 0.999 else b["wall_s"] <= 60 * scale)
        else:
            row("b", "not run", None)
        if "c" in r:
            m = r["c"]["median"]
            cost = r["c"]["median_cost_pct"]
            reps = ", ".join(f"{x:+.1f}" for x in r["c"]["cost_pct_per_rep"])
            c = r["c"]["median_cpu_us_per_put"]
            seq = (f"{cost:+.1f} % (median of per-repetition costs {reps}; medians: off "
                   f"{m['off']:.0f} puts/s, file:// {m['async']:.0f}, sync {m['sync']:.0f}; "
                   f"server CPU per put {c['off']:.0f} / {c['async']:.0f} / {c['sync']:.0f} us)")
            p = r.get("c_paired")
            if p and p["ab_tput_cost"]["n"] >= 2 and p["ab_cpu_cost"]["n"] >= 2:
                t, cc, aa = p["ab_tput_cost"], p["ab_cpu_cost"], p["aa_tput_cost"]
                arch = (f"; archiver thread {statistics.median(p['archiver_us_per_put']):.1f} us/put"
                        if p["archiver_us_per_put"] else "")
                aa_txt = (f"A/A control {aa['mean']:+.1f} ± {aa['ci95']:.1f} %"
                          if aa["n"] >= 2 else "no A/A control")
                row("c", f"throughput {t['mean']:+.1f} ± {t['ci95']:.1f} % (mean ± 95 % CI of "
                         f"{t['n']} simultaneous pairs; {aa_txt}); server CPU per put "
                         f"{cc['mean']:+.1f} ± {cc['ci95']:.1f} %{arch}. One server at a time "
                         f"(includes disk contention, ~15 % noise per run): {seq}",
                    t["mean"] + t["ci95"] <= 5.0 and cc["mean"] + cc["ci95"] <= 5.0)
            else:
                row("c", seq + " (one server at a time; no paired runs)", cost <= 5.0)
            d = r["d"]
            added = d["median_added_p99_ms"]
            reps = ", ".join(f"{x:+.1f}" for x in d["added_p99_ms_per_rep"])
            row("d", f"{added:+.2f} ms (per repetition {reps}; median p99 off "
                     f"{d['median_p99']['off']:.2f} ms, sync {d['median_p99']['sync']:.2f} ms; "
                     f"open loop {d['rate']} puts/s)", added <= 10.0)
            for k in ("e", "e3"):
                e = r.get(k)
                if e is None:
                    row(k, "not run (s3rver not installed: npm ci in test/archive/node)", None)
                elif e["samples"]:
                    row(k, f"p50 {e['p50_s'] * 1000:.0f} ms, p99 {e['p99_s'] * 1000:.0f} ms, max "
                           f"{e['max_s'] * 1000:.0f} ms ({e['samples']} samples at "
                           f"~{e['rate']:.0f} puts/s)", e["p50_s"] <= 0.25 and e["p99_s"] <= 1.0)
                else:
                    row(k, "no samples", False)
        else:
            for k in ("c", "d", "e", "e3"):
                row(k, "not run", None)
        head = ["| target | measured | goal | verdict |", "|---|---|---|---|"]
        return "\n".join(head + rows)


class LagSampler:
    """Samples tidemark_archive_lag_seconds every 50 ms on a thread."""

    def __init__(self, server, period=0.05):
        self.server = server
        self.period = period
        self.samples = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                v = self.server.metric("tidemark_archive_lag_seconds")
                if v is not None:
                    self.samples.append(v)
            except OSError:
                pass
            self.stop_ev.wait(self.period)

    def stop(self):
        self.stop_ev.set()
        self.t.join(10)
        # The first ~second is the warm-up; keep every sample (lag is what it is).
        return self.samples


def cpu_busy(window=0.3):
    """Fraction of all CPUs busy over `window` seconds (from /proc/stat)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]  # idle + iowait
        return sum(v), idle
    t0, i0 = sample()
    time.sleep(window)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def settle(max_wait=20.0, busy_below=0.15):
    """Before a measured run: write back dirty pages and wait for the machine to
    go quiet, so the background work a previous configuration left behind
    (RocksDB flushes and compactions, page-cache writeback) is not charged to
    the next one. Returns the seconds waited; logs when it never settled."""
    t = time.monotonic()
    os.sync()
    while time.monotonic() - t < max_wait:
        if cpu_busy() < busy_below:
            return time.monotonic() - t
    log(f"machine still busy after {max_wait:.0f} s ({100 * cpu_busy():.0f} % CPU); measuring anyway")
    return time.monotonic() - t


# Two-sided 95 % critical values of Student's t for 1..30 degrees of freedom.
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
       2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
       2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def mean_ci(values):
    """Mean, sample SD and the half-width of the 95 % confidence interval of
    the mean (Student's t), for paired differences."""
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "ci95": None}
    m = statistics.mean(values)
    if n == 1:
        return {"n": 1, "mean": m, "sd": None, "ci95": None}
    sd = statistics.stdev(values)
    t = T95[n - 2] if n - 1 <= len(T95) else 1.96
    return {"n": n, "mean": m, "sd": sd, "ci95": t * sd / (n ** 0.5)}


def thread_cpu_seconds(pid, name):
    """CPU seconds (user + system) used so far by the threads of `pid` called
    `name`; None if the process is gone."""
    total, tick = 0, os.sysconf("SC_CLK_TCK")
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    if f.read().strip() != name:
                        continue
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
            except OSError:
                continue
    except OSError:
        return None
    return total / tick


def pct(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tidemark-bin", default=os.environ.get(
        "TIDEMARK_BIN", str(REPO / "build" / "src" / "cli" / "tidemark")))
    ap.add_argument("--quick", action="store_true", help="smoke run (< 2 min): small sizes, short runs")
    ap.add_argument("--workdir", help="where data dirs and archives go (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--only", default="a,b,c", help="parts to run: a, b, c (c = c, d and e)")
    ap.add_argument("--replay-entries", type=int, default=300000, help="(a) archive size")
    ap.add_argument("--replay-keys", type=int, default=100000, help="(a) key space")
    ap.add_argument("--restores", type=int, default=3, help="(a) restores of the archive")
    ap.add_argument("--big-entries", type=int, default=1000000, help="(b) keys = revisions")
    ap.add_argument("--reps", type=int, default=3, help="(c)-(e) interleaved repetitions")
    ap.add_argument("--pair-reps", type=int, default=8,
                    help="(c) repetitions of the three simultaneous pairs (0: skip)")
    ap.add_argument("--duration", default="5s", help="(c)-(e) measured time per run")
    ap.add_argument("--warmup", default="1s")
    ap.add_argument("--rate", type=int, default=2000, help="(d) open-loop put rate")
    ap.add_argument("--json", help="write every raw number here")
    ap.add_argument("--compare-bin", help="(a), (b): also restore each archive with this binary "
                    "(e.g. a build of the previous commit), interleaved")
    args = ap.parse_args()
    if args.quick:
        args.replay_entries, args.restores, args.big_entries = 20000, 3, 20000
        args.duration, args.warmup, args.rate = "2s", "0.5s", 1000
        args.pair_reps = min(args.pair_reps, 1)
    if not os.path.exists(args.tidemark_bin):
        sys.exit(f"tidemark binary not found: {args.tidemark_bin} (build it or set TIDEMARK_BIN)")
    command = "/usr/bin/python3 bench/archive-bench.py " + shlex.join(sys.argv[1:])
    b = Bench(args)
    parts = set(args.only.split(","))
    t0 = time.monotonic()
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        if "a" in parts:
            b.restore_rate()
        if "b" in parts:
            b.restore_big()
        if "c" in parts:
            if args.pair_reps > 0:
                b.paired()
            b.live()
    finally:
        b.stop_all()
        if not args.keep and not args.workdir:
            shutil.rmtree(b.work, ignore_errors=True)
    b.results["load_after"] = loadavg()
    b.results["seconds"] = time.monotonic() - t0
    print("## Archive and restore (`bench/archive-bench.py`)\n")
    print("```\n" + command.strip() + "\n```\n")
    print(b.table())
    print(f"\nLoad average (1 min) before/after: {b.results['load_before']:.2f} / "
          f"{b.results['load_after']:.2f}; {os.cpu_count()} cores; took {b.results['seconds']:.0f} s.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(b.results, f, indent=1)


if __name__ == "__main__":
    main()
