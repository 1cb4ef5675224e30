"""End-to-end tests of `tidemark bench` against real servers on loopback:
a short A/B between etcd 3.4 and tidemark, Ctrl-C handling, argument errors,
and agreement with etcd's own benchmark tool on one shared workload.

Run: TIDEMARK_BIN=build/src/cli/tidemark /usr/bin/python3 -m pytest test/bench
"""
import json
import os
import signal
import statistics
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from benchlib import etcd_benchmark_bin, run_bench

SHORT = ["--requests", "1500", "--warmup", "0.2s", "--conns", "2", "--clients", "10",
         "--key-space", "1000", "--progress", "never", "--test-mode"]


def test_ab_etcd_vs_tidemark_writes_json_markdown_and_svg(bench_bin, etcd, tidemark, tmp_path):
    out = tmp_path / "ab"
    r = run_bench(bench_bin, "ab", "--a", etcd.endpoint, "--b", tidemark.endpoint,
                  "--a-name", "etcd", "--b-name", "tidemark", "--reps", "2", "--out", str(out),
                  *SHORT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "B/A put throughput" in r.stdout

    j = json.loads((out / "results.json").read_text())
    assert j["mode"] == "ab" and j["workload"] == "put" and not j["cancelled"]
    reps = j["repetitions"]
    # Interleaved A B A B.
    assert [x["target"] for x in reps] == ["etcd", "tidemark", "etcd", "tidemark"]
    for x in reps:
        assert x["ok"] == 1500 and x["errors"] == 0
        assert x["throughput"] > 0
        lat = x["latency"]
        assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["p999_ms"] <= lat["max_ms"]
        assert x["latency_cdf_ms"][-1][1] == 1.0
    for label in ("etcd", "tidemark"):
        s = j["summary"][label]["throughput"]
        assert s["n"] == 2 and len(s["values"]) == 2
        assert s["ci95_mean"][0] <= s["mean"] <= s["ci95_mean"][1]
    # Both servers are local: PIDs found from the ports, so CPU and RSS are known.
    assert all(t["pid"] > 0 and t["peak_rss_bytes"] > 0 for t in j["targets"])
    assert all(x["cpu_us_per_op"] > 0 for x in reps)
    metrics = {c["metric"] for c in j["comparisons"]}
    assert {"throughput", "p99_ms", "cpu_us_per_op"} <= metrics
    assert any(v.startswith("B/A put throughput") for v in j["verdicts"])

    md = (out / "results.md").read_text()
    assert "| throughput (req/s) |" in md and "## Verdicts" in md
    med = statistics.median(x["throughput"] for x in reps if x["target"] == "tidemark")
    assert f"{med:.0f}" in md  # the medians in the table are the JSON's figures

    for name in ("latency-cdf.svg", "throughput.svg"):
        root = ET.parse(out / name).getroot()
        assert root.tag.endswith("svg")
        assert len(root.findall(".//{http://www.w3.org/2000/svg}polyline")) >= 2
        text = (out / name).read_text()
        assert "etcd" in text and "tidemark" in text


def test_open_loop_run_with_mix_and_zipf(bench_bin, tidemark, tmp_path):
    out = tmp_path / "open"
    r = run_bench(bench_bin, "run", "--endpoint", tidemark.endpoint, "--mix",
                  "range=4,put=2,delete=1,txn=1", "--consistency", "s", "--key-dist", "zipf:0.99",
                  "--prefill", "--rate", "1000", "--duration", "1s", "--reps", "1",
                  "--value-size", "16-512", "--out", str(out), *SHORT[2:])
    assert r.returncode == 0, r.stdout + r.stderr
    j = json.loads((out / "results.json").read_text())
    rep = j["repetitions"][0]
    assert j["config"]["rate"] == 1000 and j["workload"] == "mixed"
    assert abs(rep["ok"] - 1000) <= 2  # every intended request of 1 s at 1000/s
    assert set(rep["by_op"]) == {"range", "put", "delete", "txn"}
    assert 800 < rep["throughput"] < 1200


def test_ctrl_c_keeps_finished_repetitions(bench_bin, tidemark, tmp_path):
    out = tmp_path / "cancel"
    p = subprocess.Popen([bench_bin, "bench", "run", "--endpoint", tidemark.endpoint,
                          "--duration", "0.5s", "--warmup", "0s", "--reps", "100", "--clients", "4",
                          "--conns", "1", "--progress", "never", "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=30)
    assert p.returncode == 130, stdout + stderr
    j = json.loads((out / "results.json").read_text())
    assert j["cancelled"] is True
    assert 1 <= len(j["repetitions"]) < 100
    assert all(x["measured_seconds"] > 0.4 for x in j["repetitions"])  # only whole ones


@pytest.mark.parametrize("args,code,message", [
    (["run", "--workload", "scan"], 2, "unknown workload 'scan'"),
    (["run", "--key-dist", "zipf:0"], 2, "zipf alpha must be > 0"),
    (["run", "--key-dist", "zipf:-1.5"], 2, "zipf alpha must be > 0"),
    (["run", "--endpoint", "127.0.0.1:1", "--connect-timeout", "500ms"], 1, "cannot connect to 127.0.0.1:1"),
    (["run", "--endpoint", "192.0.2.1:2379", "--test-mode"], 2, "not a loopback address"),
    (["ab", "--a", "127.0.0.1:1"], 2, "needs --a and --b"),
    (["run", "--mix", "put=1,scan=1"], 2, "unknown workload operation 'scan'"),
    (["run", "--delay", "exp:-1ms"], 2, "delay 'exp:-1ms'"),
])
def test_bad_arguments_give_clear_errors(bench_bin, args, code, message, tmp_path):
    r = run_bench(bench_bin, *args, "--out", str(tmp_path / "x"), "--progress", "never", timeout=30)
    assert r.returncode == code, r.stdout + r.stderr
    assert r.stderr.startswith("Error: ") and message in r.stderr, r.stderr


def parse_etcd_benchmark(text):
    for line in text.splitlines():
        if "Requests/sec:" in line:
            return float(line.split()[-1])
    raise AssertionError("no Requests/sec in etcd benchmark output:\n" + text)


# Default: 1 connection x 1 client, the steadiest figure on a shared machine
# (etcd-baseline.md). TM_AGREE_CONNS=10 TM_AGREE_CLIENTS=50 TM_AGREE_TOTAL=8000
# checks the concurrent path; it agreed within 3-13 % here but is at the mercy
# of other load on the machine.
CONNS, CLIENTS, TOTAL = (os.environ.get("TM_AGREE_CONNS", "1"),
                         os.environ.get("TM_AGREE_CLIENTS", "1"),
                         os.environ.get("TM_AGREE_TOTAL", "1500"))


def test_agrees_with_etcd_benchmark_tool(bench_bin, etcd, tmp_path):
    """Same server, same workload (put, 8 B keys, 256 B values, uniform over
    100k keys, CONNS x CLIENTS, TOTAL requests), run back to back
    six times each, in A B B A order so that neither always runs first on the
    growing database. The machine's load drifts by more than 15 % within a
    minute, so each harness run is compared with the tool run next to it: the
    median of those six paired ratios must lie within 15 % of 1. Bursts of
    other load on the 2 shared cores can still swing one attempt by more, so
    up to three attempts are made; a real disagreement fails all three."""
    tool = etcd_benchmark_bin()
    assert tool is not None, ("etcd's benchmark tool is not built: run bench/build-etcd-benchmark.sh "
                              "(scripts/test.sh does)")

    def run_theirs():
        r = subprocess.run([tool, "put", f"--endpoints={etcd.endpoint}", "--conns=" + CONNS,
                            "--clients=" + CLIENTS, "--key-space-size=100000", "--key-size=8",
                            "--val-size=256", "--total=" + TOTAL, "--precise"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        theirs.append(parse_etcd_benchmark(r.stdout))

    def run_ours(i):
        out = tmp_path / f"agree{i}"
        r = run_bench(bench_bin, "run", "--endpoint", etcd.endpoint, "--conns", CONNS, "--clients",
                      CLIENTS, "--key-space", "100000", "--key-size", "8", "--value-size", "256",
                      "--requests", TOTAL, "--warmup", "0s", "--reps", "1", "--seed", str(i + 1),
                      "--progress", "never", "--out", str(out))
        assert r.returncode == 0, r.stdout + r.stderr
        ours.append(json.loads((out / "results.json").read_text())["repetitions"][0]["throughput"])

    attempts = []
    for attempt in range(3):
        ours, theirs = [], []
        for i in range(6):
            if i % 2 == 0:
                run_theirs()
                run_ours(i)
            else:
                run_ours(i)
                run_theirs()
        ratio = statistics.median(o / t for o, t in zip(ours, theirs))
        attempts.append(f"harness {[round(x) for x in ours]} vs etcd benchmark "
                        f"{[round(x) for x in theirs]}: ratio {ratio:.3f}")
        print(attempts[-1])
        if 0.85 <= ratio <= 1.15:
            return
    raise AssertionError("harness and etcd benchmark disagree by > 15 %:\n" + "\n".join(attempts))


def test_server_side_fsync_delay_injection_shows_in_latency(bench_bin, workdir, tmp_path):
    """tidemark serve --debug-inject-fsync-delay=const:20ms: every durable put
    waits >= 20 ms, which a 1-client run must see in its p50."""
    import tmserver
    s = tmserver.Server(os.path.join(workdir, "tm-inject"),
                        extra=["--debug-inject-fsync-delay=const:20ms"]).start()
    try:
        out = tmp_path / "inject"
        r = run_bench(bench_bin, "run", "--endpoint", s.endpoint, "--clients", "1", "--conns", "1",
                      "--requests", "20", "--warmup", "0s", "--reps", "1", "--progress", "never",
                      "--out", str(out))
        assert r.returncode == 0, r.stdout + r.stderr
        lat = json.loads((out / "results.json").read_text())["repetitions"][0]["latency"]
        assert lat["p50_ms"] >= 20, lat
    finally:
        s.stop()


def test_engines_smoke(bench_bin, tmp_path):
    out = tmp_path / "engines"
    r = run_bench(bench_bin, "engines", "--engines", "tidemark,rocksdb", "--sync", "off",
                  "--clients", "2", "--requests", "500", "--warmup", "0s", "--reps", "1",
                  "--key-space", "200", "--prefill", "--dir", str(tmp_path / "data"),
                  "--progress", "never", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    j = json.loads((out / "results.json").read_text())
    assert [x["target"] for x in j["repetitions"]] == ["tidemark/nosync", "rocksdb/nosync"]
    for x in j["repetitions"]:
        assert x["ok"] == 500 and x["errors"] == 0 and x["throughput"] > 0
        assert x["disk_bytes"] > 0 and x["peak_rss_bytes"] > 0
    assert "## Engine figures" in (out / "results.md").read_text()
    bad = run_bench(bench_bin, "engines", "--engines", "berkeleydb", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "unknown engine 'berkeleydb'" in bad.stderr


def test_watch_workload_counts_every_event(bench_bin, tidemark, tmp_path):
    """100 watchers on 4 keys over 4 streams, puts at 200/s for 1 s: every put
    reaches its 25 watchers; events/s and put -> event latency are reported."""
    out = tmp_path / "watch"
    r = run_bench(bench_bin, "run", "--endpoint", tidemark.endpoint, "--workload", "watch",
                  "--watchers", "100", "--watch-streams", "4", "--watched-keys", "4",
                  "--put-rate", "200", "--duration", "1s", "--warmup", "0.2s", "--reps", "1",
                  "--conns", "2", "--clients", "4", "--progress", "never", "--test-mode",
                  "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    j = json.loads((out / "results.json").read_text())
    rep = j["repetitions"][0]
    assert j["workload"] == "watch"
    total_puts = rep["puts_ok"] + 40  # 0.2 s warm-up at 200/s
    assert rep["watch_events_total"] == total_puts * 25, rep
    assert rep["ok"] == rep["puts_ok"] * 25
    assert 0 < rep["latency"]["p50_ms"] < 1000
    assert 3000 < rep["throughput"] < 7000  # ~200 puts/s x 25 watchers
