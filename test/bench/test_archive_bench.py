"""Smoke test of bench/archive-bench.py: a --quick run against the real
tidemark binary prints the Markdown table with every target row (a)-(e) and
the exact command. It does not judge the numbers (a shared 2-core box makes
speed assertions flaky); docs/benchmarks.md records the full run.

Run: TIDEMARK_BIN=build/src/cli/tidemark /usr/bin/python3 -m pytest test/bench/test_archive_bench.py
"""
import json
import os
import re
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "bench", "archive-bench.py")


def tidemark_bin():
    path = os.environ.get("TIDEMARK_BIN", os.path.join(ROOT, "build", "src", "cli", "tidemark"))
    assert os.path.exists(path), f"tidemark binary not found at {path}: build first or set TIDEMARK_BIN"
    return path


def test_quick_run_prints_every_row(tmp_path):
    out_json = tmp_path / "r.json"
    p = subprocess.run(["/usr/bin/python3", SCRIPT, "--quick", "--tidemark-bin", tidemark_bin(),
                        "--json", str(out_json)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert "## Archive and restore" in out
    assert "/usr/bin/python3 bench/archive-bench.py --quick" in out
    assert "| target | measured | goal | verdict |" in out
    for key in "abcde":
        rows = [line for line in out.splitlines() if line.startswith(f"| ({key}) ")]
        assert len(rows) == 1, f"row ({key}) missing:\n{out}"
        cells = [c.strip() for c in rows[0].strip("|").split("|")]
        assert len(cells) == 4, rows[0]
        assert cells[1] != "not run" and re.search(r"\d", cells[1]), rows[0]
        assert cells[3] in ("met", "**missed**"), rows[0]
    assert re.search(r"Load average \(1 min\) before/after: [\d.]+ / [\d.]+", out)
    raw = json.loads(out_json.read_text())
    for key in "abcde":
        assert key in raw
    # (c) comes from simultaneous pairs: two with the archiving server, one A/A.
    paired = raw["c_paired"]
    assert paired["ab_tput_cost"]["n"] == 2 and paired["aa_tput_cost"]["n"] == 1
    assert all(len(r["throughput"]) == 2 and min(r["throughput"]) > 0 for r in paired["runs"])
    c_row = next(line for line in out.splitlines() if line.startswith("| (c) "))
    assert "simultaneous pairs" in c_row and "A/A control" in c_row
    assert raw["b"]["keys"] == raw["b"]["entries"] == 20000
    assert raw["a"]["runs"] and all(r["entries"] == 20000 for r in raw["a"]["runs"])
    # No server left behind: the script stops everything it started.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "--name archbench" not in ps


def test_mean_ci_is_students_t_interval():
    import importlib.util
    import sys
    sys.path.insert(0, os.path.dirname(SCRIPT))  # as when run by path: bench_common
    spec = importlib.util.spec_from_file_location("archive_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = mod.mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, sd sqrt(2.5), t(0.975, 4 df) = 2.776 -> half-width 2.776 * 1.5811 / sqrt(5)
    assert r["n"] == 5 and abs(r["mean"] - 3.0) < 1e-12
    assert abs(r["sd"] - 2.5 ** 0.5) < 1e-12
    assert abs(r["ci95"] - 2.776 * 2.5 ** 0.5 / 5 ** 0.5) < 1e-9
    assert mod.mean_ci([2.0])["ci95"] is None and mod.mean_ci([])["n"] == 0
    big = mod.mean_ci([float(i % 3) for i in range(100)])  # beyond the table: normal 1.96
    assert abs(big["ci95"] - 1.96 * big["sd"] / 10) < 1e-9
