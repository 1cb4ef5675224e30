"""Smoke test of bench/fsync-interference.py: a short run on this machine's
disk prints fdatasync figures for both phase kinds and the difference, and
leaves no files behind. The numbers are not judged (docs/benchmarks.md has a
full run)."""
import os
import re
import subprocess

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "fsync-interference.py")


def test_short_run_reports_both_phases(tmp_path):
    p = subprocess.run(["/usr/bin/python3", SCRIPT, "--dir", str(tmp_path), "--phases", "2",
                        "--seconds", "0.5", "--chunk-bytes", "65536"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    phases = re.findall(r"phase \d (quiet|archive) *: fdatasync p50 (\d+) us", p.stdout)
    assert sorted(k for k, _ in phases) == ["archive", "archive", "quiet", "quiet"], p.stdout
    assert all(int(v) > 0 for _, v in phases)
    assert re.search(r"archive traffic changes WAL syncs/s by [+-]\d+\.\d %", p.stdout), p.stdout
    assert list(tmp_path.iterdir()) == []  # its temp dir is removed
