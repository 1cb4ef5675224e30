#!/usr/bin/python3
"""Put throughput as the store grows: tidemark versus etcd 3.4, same run.

compare-etcd.py clears each server's state before every run, so it measures
puts into a small store. This script never clears: it runs R rounds of
closed-loop puts (random keys over a 100k key space, 256 B values, 100
clients over 10 connections, `tidemark bench run`) against each server in
turn, interleaved round by round, so every server's store grows the same way
(~100k revisions per round on this machine). It prints each round's
throughput and server CPU per put, and the last round's ratio tidemark/etcd.

  /usr/bin/python3 bench/put-growth.py [--rounds 6] [--duration 6s]
        [--tidemark-bin build/src/cli/tidemark] [--compare-bin OLD_BINARY]

--compare-bin adds a third server (another tidemark build, e.g. the previous
commit) to the same interleaving. Every server binds 127.0.0.1 on a free
port, in a temporary directory, and is stopped at the end (also on error or
Ctrl-C). Stdlib only.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import free_port, make_log

REPO = Path(__file__).resolve().parent.parent


log = make_log("put-growth")


class Server:
    def __init__(self, label, cmd_fn, workdir):
        self.label, self.workdir = label, workdir
        self.port = free_port()
        self.data_dir = os.path.join(workdir, label)
        url = f"http://127.0.0.1:{self.port}"
        self.cmd = cmd_fn(self.data_dir, url)
        self.log = open(os.path.join(workdir, f"{label}.log"), "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited ({self.proc.returncode}); see {self.log.name}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.label} not listening after {timeout}s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def tidemark_cmd(binary):
    return lambda d, url: [binary, "serve", "--name", "growth", "--data-dir", d,
                           "--listen-client-urls", url, "--advertise-client-urls", url]


def etcd_cmd(binary, port_fn):
    def cmd(d, url):
        peer = f"http://127.0.0.1:{port_fn()}"
        return [binary, "--name", "growth", "--data-dir", d, "--listen-client-urls", url,
                "--advertise-client-urls", url, "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer, "--initial-cluster", f"growth={peer}",
                "--quota-backend-bytes", str(8 << 30), "--log-level", "warn"]
    return cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tidemark-bin", default=os.environ.get(
        "TIDEMARK_BIN", str(REPO / "build" / "src" / "cli" / "tidemark")))
    ap.add_argument("--compare-bin", help="another tidemark binary, interleaved as a third server")
    ap.add_argument("--etcd-bin", default="/usr/bin/etcd")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--duration", default="6s", help="measured time per round per server")
    ap.add_argument("--json", help="write every raw number here")
    a = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="tm-put-growth-")
    servers = []
    try:
        servers.append(Server("etcd", etcd_cmd(a.etcd_bin, free_port), workdir))
        servers.append(Server("tidemark", tidemark_cmd(a.tidemark_bin), workdir))
        if a.compare_bin:
            servers.append(Server("tidemark-compare", tidemark_cmd(a.compare_bin), workdir))
        for s in servers:
            s.wait_ready()
        rows = {s.label: [] for s in servers}
        for rnd in range(a.rounds):
            order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
            for s in order:
                out = os.path.join(workdir, "out")
                cmd = [a.tidemark_bin, "bench", "run", "--endpoint", s.endpoint, "--test-mode",
                       "--pid", str(s.proc.pid), "--workload", "put", "--key-space", "100000",
                       "--value-size", "256", "--conns", "10", "--clients", "100",
                       "--warmup", "0s", "--duration", a.duration, "--reps", "1",
                       "--progress", "never", "--out", out]
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
                if p.returncode != 0:
                    raise RuntimeError(f"bench run failed:\n{p.stdout}\n{p.stderr}")
                with open(os.path.join(out, "results.json")) as f:
                    rep = json.load(f)["repetitions"][0]
                shutil.rmtree(out, ignore_errors=True)
                r = {"round": rnd + 1, "puts_per_s": rep["throughput"],
                     "cpu_us_per_put": rep.get("cpu_us_per_op"), "p99_ms": rep["latency"]["p99_ms"]}
                rows[s.label].append(r)
                log(f"round {rnd + 1} {s.label:17s} {r['puts_per_s']:8.0f} puts/s  "
                    f"cpu {r['cpu_us_per_put'] or 0:6.1f} us/put  p99 {r['p99_ms']:.1f} ms")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    labels = [s.label for s in servers]
    print(f"\n```\n/usr/bin/python3 bench/put-growth.py {' '.join(sys.argv[1:])}\n```\n")
    print("| round | " + " | ".join(f"{l} puts/s (cpu us/put)" for l in labels) + " |")
    print("|---|" + "---|" * len(labels))
    for i in range(a.rounds):
        cells = [f"{rows[l][i]['puts_per_s']:.0f} ({rows[l][i]['cpu_us_per_put'] or 0:.0f})" for l in labels]
        print(f"| {i + 1} | " + " | ".join(cells) + " |")
    last = {l: rows[l][-1]["puts_per_s"] for l in labels}
    first = {l: rows[l][0]["puts_per_s"] for l in labels}
    for l in labels:
        print(f"\n{l}: last round / first round = {last[l] / first[l]:.2f}; "
              f"last round / etcd's last round = {last[l] / last['etcd']:.2f}")
    print("\nMedian over rounds: " + ", ".join(
        f"{l} {statistics.median(r['puts_per_s'] for r in rows[l]):.0f} puts/s" for l in labels))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
