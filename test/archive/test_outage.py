"""Archive target outage under load (directory target: the archive root is
replaced by a plain file, so every Put fails), spool limit, and SIGTERM.

* writes go on during the outage; lag and spool grow; nothing is lost:
  once the target is back the archiver catches up, verify passes and a
  restore holds every acknowledged write;
* past --archive-spool-limit, writes are refused with a clear error, and
  accepted again once the archive caught up;
* SIGTERM with the target down exits non-zero naming what was not shipped;
  SIGTERM with the target up ships everything (exit 0).
"""
import os
import shutil
import time

import grpc
from etcd3 import etcdrpc

from tmarchive import Server, Writers, read_all, restore, run


def break_target(arch_dir):
    os.rename(arch_dir, str(arch_dir) + ".away")
    with open(arch_dir, "w") as f:
        f.write("not a directory\n")


def heal_target(arch_dir):
    os.unlink(arch_dir)
    os.rename(str(arch_dir) + ".away", arch_dir)


def wait_for(pred, timeout=30, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_outage_under_load(tmp_path):
    arch_dir = tmp_path / "archive"
    url = f"file://{arch_dir}"
    srv = Server(str(tmp_path / "data"), url,
                 ["--archive-interval", "200ms", "--wal-segment-bytes", str(256 << 10)]).start().wait_archiving()
    w = Writers(srv.endpoint, n=20).start()
    time.sleep(1)
    break_target(arch_dir)
    time.sleep(3)
    m = srv.metrics()
    assert m["tidemark_archive_lag_seconds"] >= 1.0, m
    assert m["tidemark_archive_spool_bytes"] > 0, m
    assert m['tidemark_archive_requests_total{result="error"}'] > 0, m
    n_during = len(w.acked)
    heal_target(arch_dir)
    time.sleep(1)
    w.stop()
    assert len(w.acked) > n_during > 100, "writes must go on during the outage"
    wait_for(lambda: srv.metrics()["tidemark_archive_lag_revisions"] == 0, what="catch-up")
    assert srv.metrics()["tidemark_archive_spool_bytes"] == 0
    assert srv.stop() == 0
    assert "circuit breaker open" in srv.log()
    run("archive", "verify", "--archive-url", url, "--deep", check=True)
    data2 = str(tmp_path / "restored")
    restore(url, data2, "--latest")
    s2 = Server(data2).start()
    try:
        _, have = read_all(s2.endpoint, b"w/")
        lost = [a for a in w.acked if have.get(a[0]) != (a[1], a[2])]
        assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:2]}"
    finally:
        s2.stop()


def test_spool_limit_refuses_writes(tmp_path):
    arch_dir = tmp_path / "archive"
    url = f"file://{arch_dir}"
    srv = Server(str(tmp_path / "data"), url,
                 ["--archive-interval", "100ms", "--archive-spool-limit", "64KiB"]).start().wait_archiving()
    kv, _, ch = srv.kv()
    kv.Put(etcdrpc.PutRequest(key=b"a", value=b"1"))
    time.sleep(0.5)
    break_target(arch_dir)
    refused = None
    for i in range(5000):
        try:
            kv.Put(etcdrpc.PutRequest(key=b"k%d" % i, value=b"x" * 200), timeout=5)
        except grpc.RpcError as e:
            refused = e
            break
    assert refused is not None, "writes were never refused past the spool limit"
    assert "archive spool limit exceeded" in refused.details(), refused.details()
    heal_target(arch_dir)
    wait_for(lambda: srv.metrics()["tidemark_archive_spool_bytes"] == 0, what="spool drain")
    kv.Put(etcdrpc.PutRequest(key=b"after", value=b"ok"), timeout=5)  # accepted again
    ch.close()
    assert srv.stop() == 0


def test_sigterm_reports_unshipped(tmp_path):
    arch_dir = tmp_path / "archive"
    url = f"file://{arch_dir}"
    srv = Server(str(tmp_path / "data"), url,
                 ["--archive-interval", "10s", "--archive-shutdown-timeout", "1s"]).start()
    srv.wait_archiving()  # first base shipped
    kv, _, ch = srv.kv()
    for i in range(50):
        kv.Put(etcdrpc.PutRequest(key=b"k%d" % i, value=b"v"))
    ch.close()
    break_target(arch_dir)
    rc = srv.stop()
    assert rc == 3, rc
    log = srv.log()
    assert "not shipped within the deadline: entries" in log, log[-3000:]
    heal_target(arch_dir)
    # Restarted with the target up: it ships the backlog from the local WAL;
    # SIGTERM then exits 0 with everything archived.
    srv2 = Server(str(tmp_path / "data"), url, ["--archive-interval", "10s"]).start()
    assert srv2.stop() == 0
    d = str(tmp_path / "restored")
    out = restore(url, d, "--latest").stdout
    assert "revision:      51\n" in out, out
