"""A restore killed (SIGKILL) part-way never leaves a data dir that looks
restored: the target dir does not exist, the half-built <dir>.restoring is
refused by `tidemark serve` (its store is marked unfinished), a concurrent
restore into the same dir is refused while the first runs, and the next
restore removes the leftover and rebuilds the same state as the source
(HashKV and every key)."""
import glob
import os
import shutil
import signal
import subprocess
import time

import grpc
from etcd3 import etcdrpc

from tmarchive import Server, binary, read_all, restore, run


def hashkv(endpoint):
    ch = grpc.insecure_channel(endpoint)
    h = etcdrpc.MaintenanceStub(ch).HashKV(etcdrpc.HashKVRequest(revision=0), timeout=30)
    ch.close()
    return h.hash, h.header.revision


def load(endpoint, n, out):
    # `tidemark bench run`: fast closed-loop puts over n distinct-ish keys.
    run("bench", "run", "--endpoint", endpoint, "--test-mode", "--workload", "put",
        "--key-space", "20000", "--value-size", "64", "--requests", str(n), "--reps", "1",
        "--warmup", "0s", "--conns", "2", "--clients", "32", "--progress", "never",
        "--out", out, check=True, timeout=300)


def start_restore(url, data_dir):
    return subprocess.Popen([binary(), "restore", "--archive-url", url, "--data-dir", data_dir,
                             "--latest"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_killed_restore_is_refused_then_restarted(tmp_path):
    url = f"file://{tmp_path}/archive"
    src = Server(str(tmp_path / "src"), url, ["--archive-interval", "200ms"]).start().wait_archiving()
    load(src.endpoint, 60000, str(tmp_path / "bench"))
    want_hash, want_rev = hashkv(src.endpoint)
    want_rev2, want_kvs = read_all(src.endpoint)
    assert src.stop() == 0

    target = str(tmp_path / "restored")
    building = target + ".restoring"
    killed_mid_way = False
    for delay in (0.0, 0.05, 0.15, 0.3):
        p = start_restore(url, target)
        # Wait until the base is loaded and flushed (an SST exists), then a bit.
        deadline = time.monotonic() + 30
        while not glob.glob(building + "/db/*.sst") and p.poll() is None:
            assert time.monotonic() < deadline, "restore made no progress"
            time.sleep(0.002)
        time.sleep(delay)
        if p.poll() is None:
            # While it runs, a second restore into the same dir is refused.
            q = restore(url, target, "--latest", check=False)
            if p.poll() is None:
                assert q.returncode != 0
                assert "another running restore" in q.stderr + q.stdout, q.stderr
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            if p.returncode == -signal.SIGKILL and os.path.isdir(building):
                killed_mid_way = True
                break
        p.communicate(timeout=10)
        # Finished before the kill: start over.
        shutil.rmtree(target, ignore_errors=True)
    assert killed_mid_way, "the restore always finished before it could be killed"
    assert not os.path.exists(target), "a killed restore must not leave the target dir"

    # A server pointed at the half-built dir refuses it.
    half = Server(building)
    try:
        half.start(timeout=15)
        started = True
    except AssertionError:
        started = False
    if started:
        half.kill()
    assert not started, "a server started on an unfinished restore"
    assert "unfinished restore" in half.log(), half.log()[-2000:]

    # The next restore removes the leftover and rebuilds.
    r = restore(url, target, "--latest")
    assert "removing the unfinished restore" in r.stderr, r.stderr
    assert not os.path.exists(building)
    assert not os.path.exists(os.path.join(target, "restore.lock"))
    dst = Server(target).start()
    try:
        assert hashkv(dst.endpoint) == (want_hash, want_rev)
        assert read_all(dst.endpoint) == (want_rev2, want_kvs)
    finally:
        assert dst.stop() == 0


def test_failed_restore_leaves_nothing(tmp_path):
    url = f"file://{tmp_path}/archive"
    src = Server(str(tmp_path / "src"), url, ["--archive-interval", "200ms"]).start().wait_archiving()
    kv, _, ch = src.kv()
    for i in range(50):
        kv.Put(etcdrpc.PutRequest(key=f"k{i}".encode(), value=b"v"))
    ch.close()
    assert src.stop() == 0
    target = str(tmp_path / "restored")
    r = restore(url, target, "--to-revision", "100000", check=False)
    assert r.returncode != 0 and "beyond the end" in r.stderr, r.stderr
    assert not os.path.exists(target) and not os.path.exists(target + ".restoring")
    restore(url, target, "--to-revision", "20")  # a retry needs no cleanup
