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
    assert raw["b"]["keys"] == raw["b"]["entries"] == 20000
    assert raw["a"]["runs"] and all(r["entries"] == 20000 for r in raw["a"]["runs"])
    # No server left behind: the script stops everything it started.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "--name archbench" not in ps
