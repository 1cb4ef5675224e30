"""Helpers shared by the bench e2e tests (kept out of conftest.py so that
`import` never picks another directory's conftest)."""
import os
import shutil
import subprocess


def run_bench(bench_bin, *args, timeout=120):
    return subprocess.run([bench_bin, "bench", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def etcd_benchmark_bin():
    cache = os.environ.get("TIDEMARK_BENCH_CACHE", os.path.expanduser("~/.cache/tidemark-bench"))
    path = os.path.join(cache, "etcd-benchmark")
    return path if os.path.exists(path) else shutil.which("etcd-benchmark")
