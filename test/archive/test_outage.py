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
import re
import shutil
import time

import grpc
from etcd3 import etcdrpc

from tmarchive import Server, Writers, missing, read_all, restore, restored_contents, run


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
    _, have = restored_contents(data2, b"w/")
    lost = missing(w.acked, have)
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:2]}"


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


def wal_first_index(data_dir):
    """Index of the oldest entry the data dir's WAL still holds (from the
    oldest segment's name, docs/formats/wal.md)."""
    names = sorted(n for n in os.listdir(os.path.join(data_dir, "wal")) if n.endswith(".wal"))
    return int(names[0].split("-")[1][: -len(".wal")], 16)


def test_spool_policy_continue_records_gap_end_to_end(tmp_path):
    """--archive-spool-policy continue: the target goes away, writes go on past
    the spool limit, the WAL is released without being archived; once the
    target is back a gap record and a fresh base are written; status, metrics
    and verify report the gap (not as corruption); restore --latest works from
    the fresh base, a point inside the gap is refused, a point before it works."""
    arch = tmp_path / "archive"
    url = f"file://{arch}"
    data = str(tmp_path / "data")
    srv = Server(data, url, ["--archive-interval", "100ms", "--archive-spool-limit", "1MiB",
                             "--archive-spool-policy", "continue",
                             "--wal-segment-bytes", str(256 << 10),
                             "--debug-wal-release-every-entries", "16"]).start().wait_archiving()
    kv, _, ch = srv.kv()
    want = {}
    for i in range(20):
        k, v = b"pre/%02d" % i, b"v%d" % i
        kv.Put(etcdrpc.PutRequest(key=k, value=v))
        want[k] = v
    wait_for(lambda: srv.metrics()["tidemark_archive_lag_revisions"] == 0, what="archived")
    pre_rev = kv.Range(etcdrpc.RangeRequest(key=b"pre/00")).header.revision
    archived = int(srv.metrics()["tidemark_archive_archived_index"])
    break_target(arch)
    # Writes go on past the 1 MiB spool limit until the WAL has released
    # entries that were never archived (storage must first flush its 16 MiB
    # memtable: 32 KiB values).
    i = 0
    outage_revs = []
    while wal_first_index(data) <= archived + 6:  # margin: see the gap_from check below
        k, v = b"gap/%05d" % i, os.urandom(16 << 10).hex().encode()
        r = kv.Put(etcdrpc.PutRequest(key=k, value=v), timeout=10)  # never refused
        outage_revs.append(r.header.revision)
        want[k] = v
        i += 1
        assert i < 5000, "the WAL was never released past the archived index"
    released = wal_first_index(data)  # entries below this are gone from the WAL
    m = srv.metrics()
    assert m["tidemark_archive_spool_bytes"] > (1 << 20), m
    assert m["tidemark_archive_gaps_total"] == 0, m
    print(f"{i} writes during the outage; WAL now starts at {wal_first_index(data)}, "
          f"archived index {archived}")
    heal_target(arch)
    wait_for(lambda: srv.metrics()["tidemark_archive_gaps_total"] == 1, timeout=60, what="gap record")
    wait_for(lambda: srv.metrics()["tidemark_archive_lag_revisions"] == 0, timeout=60, what="catch-up")
    st = run("archive", "status", "--archive-url", url, "--endpoint", f"http://{srv.endpoint}",
             check=True).stdout
    assert "gaps:             1\n" in st, st
    # The gap starts after what was shipped: after the archive before the outage, or after
    # the chunk the archiver had cut when the target broke (its Put failed; it is retried
    # from memory exactly as it was, so it ships even though the WAL released it).
    gap = re.search(r"  gap: +entries (\d+)\.\.(\d+)", st)
    gap_from, gap_to = int(gap.group(1)), int(gap.group(2))
    assert archived + 1 <= gap_from < released <= gap_to + 1, (archived, released, st)
    # Every entry after `archived` is one put here: entry index -> revision.
    rev_of = lambda index: pre_rev + (index - archived)  # noqa: E731
    assert rev_of(gap_from) in outage_revs, (gap_from, outage_revs[:3], outage_revs[-3:])
    first_gap_rev = rev_of(gap_from)
    for j in range(10):
        k = b"post/%02d" % j
        kv.Put(etcdrpc.PutRequest(key=k, value=b"after"))
        want[k] = b"after"
    ch.close()
    assert srv.stop() == 0
    assert "archive gap recorded" in srv.log()
    gaps = sorted((arch).glob("tl-*/gap/*.json"))
    assert len(gaps) == 1, gaps
    gap_name = str(gaps[0].relative_to(arch))
    v = run("archive", "verify", "--archive-url", url, "--deep", check=False)
    print(v.stdout)
    assert v.returncode == 0, v.stdout
    assert f"GAP: recorded gap: entries {gap_from}.." in v.stdout and gap_name in v.stdout, v.stdout
    assert "PROBLEM" not in v.stdout and "verify OK" in v.stdout
    # Latest: from the fresh base after the gap; every write is there.
    d1 = str(tmp_path / "latest")
    out = restore(url, d1, "--latest").stdout
    base_index = int(re.search(r"base: +tl-[0-9a-f]+/base/(\d+)-", out).group(1))
    assert base_index > archived + 1, out
    s1 = Server(d1).start()
    try:
        _, have = read_all(s1.endpoint)
        missing = [k for k, v in want.items() if have.get(k, (None,))[0] != v]
        assert not missing, f"{len(missing)} writes missing after restore --latest, e.g. {missing[:3]}"
    finally:
        s1.stop()
    # Inside the gap: refused, naming the gap record.
    r = restore(url, str(tmp_path / "ingap"), "--to-revision", str(first_gap_rev), check=False)
    assert r.returncode == 1, r.stdout
    assert "lies in a recorded gap" in r.stderr and gap_name in r.stderr, r.stderr
    assert not os.path.exists(tmp_path / "ingap"), "a refused restore must leave no data dir"
    # Before the gap: fine.
    out = restore(url, str(tmp_path / "before"), "--to-revision", str(pre_rev)).stdout
    assert f"revision:      {pre_rev}\n" in out, out
