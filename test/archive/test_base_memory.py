"""Base snapshots are built, uploaded and restored with memory bounded by a
constant, not by the store size: ~300 MB of incompressible values (3000 keys
x 100 KiB), then a base of all of it. The server's peak RSS (VmHWM) grows by
far less than the data while it takes and uploads the base, `tidemark restore
--latest` of it peaks far below the data size, and the restored store holds
exactly what was written. An S3 variant (s3rver) restores a multipart base
the same way."""
import hashlib
import os
import subprocess
import threading
import time

import grpc
import pytest
from etcd3 import etcdrpc

import s3rver
from tmarchive import Server, binary, run

MiB = 1 << 20
KEYS = int(os.environ.get("TM_BASE_MEMORY_KEYS", "3000"))
VALUE_BYTES = 100 << 10
# Thresholds. The old code held the whole snapshot (and a compressed copy) in
# memory, i.e. several times the data size: +~900 MiB of server peak RSS and
# ~700 MiB for the restore of 293 MiB. Now the base itself costs a few MiB;
# what a restore holds is ~45 MiB of process baseline plus RocksDB's memtables
# (up to 2 x 64 MiB) and the chunk prefetch window, none of it growing with
# the store (~170 MiB measured for 100, 300 and 600 MiB of data).
SERVER_GROWTH_LIMIT = 96 * MiB
RESTORE_RSS_LIMIT = 224 * MiB
# `archive verify` is dominated by its chunk prefetching: at most 64 MiB of
# fetched chunks (src/archive/prefetcher.h) plus the ones being checked, also
# independent of the store (71-98 MiB measured; 112-129 MiB with 8 MiB chunks).
VERIFY_RSS_LIMIT = 192 * MiB


def vm_hwm(pid):
    """Peak resident set size of a live process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/%d/status" % pid)


# Runs a command as the child of a fresh, small Python and writes the child's
# max RSS to argv[1]. Measuring through wait4 from this (pytest) process is
# wrong: Linux carries the forking process's RSS high-water mark over fork and
# exec into ru_maxrss, so after earlier tests grew pytest to a few hundred MiB
# every child "peaked" at least that high.
_MEASURE = """
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:], stdin=subprocess.DEVNULL)
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024))
sys.exit(rc)
"""


def run_measured(*args, timeout=300):
    """Runs `tidemark args...`; returns (returncode, stdout, stderr, max RSS in bytes) of
    exactly that run (see _MEASURE), whatever this test process's own size."""
    import tempfile
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        p = subprocess.Popen(["/usr/bin/python3", "-c", _MEASURE, rss.name, binary(), *args],
                             stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)  # the helper and tidemark under it
            p.wait()
            raise AssertionError(f"tidemark {' '.join(args)} did not finish in {timeout}s")
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read(), int(rss.read() or 0)


def put_values(endpoint, keys, value_bytes, threads=8, prefix="big"):
    """Puts `keys` random values from `threads` clients; returns {key: sha256(value)}."""
    digests = {}
    lock = threading.Lock()
    errors = []

    def worker(wid):
        ch = grpc.insecure_channel(endpoint, options=[("grpc.max_send_message_length", -1)])
        kv = etcdrpc.KVStub(ch)
        try:
            for i in range(wid, keys, threads):
                key = f"{prefix}/{i:06d}".encode()
                val = os.urandom(value_bytes)
                kv.Put(etcdrpc.PutRequest(key=key, value=val), timeout=60)
                with lock:
                    digests[key] = hashlib.sha256(val).digest()
        except Exception as e:  # reported below, not lost in a thread
            errors.append(repr(e))
        finally:
            ch.close()

    ts = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(600)
    assert not errors, errors[:3]
    assert len(digests) == keys
    return digests


def read_digests(endpoint, prefix):
    """{key: sha256(value)} of every key under `prefix`, read 64 keys at a time."""
    ch = grpc.insecure_channel(endpoint, options=[("grpc.max_receive_message_length", -1)])
    kv = etcdrpc.KVStub(ch)
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    out = {}
    start = prefix
    while True:
        r = kv.Range(etcdrpc.RangeRequest(key=start, range_end=end, limit=64), timeout=60)
        for k in r.kvs:
            out[k.key] = hashlib.sha256(k.value).digest()
        if not r.more:
            break
        start = r.kvs[-1].key + b"\0"
    ch.close()
    return out


def bases_shipped(srv):
    return srv.log().count("archive base snapshot shipped")


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def write_then_base(srv, keys):
    """Writes `keys` big values, waits until they are archived, then makes the server take
    a base of them (a few small writes cross --archive-base-every-entries). Returns
    (digests, VmHWM before the base, VmHWM after it)."""
    srv.wait_archiving()  # the first base (an empty store) ships at start
    wait_for(lambda: bases_shipped(srv) >= 1, 30, "the first base")
    assert bases_shipped(srv) == 1
    want = put_values(srv.endpoint, keys, VALUE_BYTES)
    wait_for(lambda: srv.metrics()["tidemark_archive_spool_bytes"] == 0, 120,
             "the big writes to be archived")
    before = vm_hwm(srv.proc.pid)
    ch = grpc.insecure_channel(srv.endpoint)
    kv = etcdrpc.KVStub(ch)
    deadline = time.monotonic() + 120
    n = 0
    while bases_shipped(srv) < 2:
        assert time.monotonic() < deadline, "no second base; see " + srv.log_path
        for _ in range(20):
            kv.Put(etcdrpc.PutRequest(key=b"small/%06d" % n, value=b"x"), timeout=10)
            n += 1
        time.sleep(0.1)
    ch.close()
    after = vm_hwm(srv.proc.pid)
    return want, before, after


def check_restored(data_dir, want):
    s = Server(data_dir).start()
    try:
        have = read_digests(s.endpoint, b"big/")
    finally:
        assert s.stop() == 0
    assert len(have) == len(want), (len(have), len(want))
    bad = [k for k in want if have.get(k) != want[k]]
    assert not bad, f"{len(bad)} values differ after restore, e.g. {bad[:3]}"


def test_base_and_restore_memory_is_bounded(tmp_path):
    data = str(tmp_path / "data")
    arch = f"file://{tmp_path / 'archive'}"
    data_bytes = KEYS * VALUE_BYTES
    srv = Server(data, arch, ["--archive-base-every-entries", str(KEYS + 50),
                              "--archive-interval", "200ms"]).start()
    try:
        t0 = time.monotonic()
        want, before, after = write_then_base(srv, KEYS)
        took_base = time.monotonic() - t0
    finally:
        assert srv.stop() == 0
    growth = after - before
    print(f"data {data_bytes / MiB:.0f} MiB; server VmHWM before the base "
          f"{before / MiB:.0f} MiB, after {after / MiB:.0f} MiB (+{growth / MiB:.1f} MiB); "
          f"writes + base {took_base:.1f} s")
    assert growth < SERVER_GROWTH_LIMIT, (
        f"taking a base of {data_bytes / MiB:.0f} MiB grew the server's peak RSS by "
        f"{growth / MiB:.0f} MiB")
    spool = os.path.join(data, "archive-spool")  # the base was built here, then removed
    assert os.path.isdir(spool) and not os.listdir(spool), os.listdir(spool)

    restored = str(tmp_path / "restored")
    t0 = time.monotonic()
    rc, out, err, maxrss = run_measured("restore", "--archive-url", arch, "--data-dir", restored,
                                        "--latest")
    took = time.monotonic() - t0
    assert rc == 0, out + err
    print(f"restore --latest: max RSS {maxrss / MiB:.0f} MiB in {took:.1f} s\n{out}")
    base_line = out.split("base:")[1].split("\n")[0]
    assert "/00000000000000000000-" not in base_line, "restored from the empty first base: " + out
    assert maxrss < RESTORE_RSS_LIMIT, (
        f"restoring a base of {data_bytes / MiB:.0f} MiB peaked at {maxrss / MiB:.0f} MiB RSS")
    check_restored(restored, want)

    # verify reads the base the same way (bounded), and still finds it whole.
    rc, out, err, vrss = run_measured("archive", "verify", "--archive-url", arch)
    assert rc == 0 and "verify OK" in out, out + err
    print(f"archive verify: max RSS {vrss / MiB:.0f} MiB")
    assert vrss < VERIFY_RSS_LIMIT


@pytest.mark.skipif(not s3rver.available(), reason=s3rver.install_hint())
def test_s3_base_upload_and_restore_memory_is_bounded(tmp_path, monkeypatch):
    """The same on S3: the base goes up multipart, one part at a time from the spool
    file, and comes down into a file in the restoring dir."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3rver.KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3rver.KEY)
    keys = KEYS
    s3 = s3rver.S3rver(tmp_path / "s3").start()
    proxy = s3rver.SigV4Proxy(s3).start()
    try:
        url = f"s3://{s3rver.BUCKET}/mem"
        ep = ["--archive-s3-endpoint", proxy.endpoint]
        data = str(tmp_path / "data")
        srv = Server(data, url, ep + ["--archive-base-every-entries", str(keys + 50),
                                      "--archive-interval", "200ms"]).start()
        try:
            want, before, after = write_then_base(srv, keys)
        finally:
            assert srv.stop() == 0
        growth = after - before
        print(f"S3: data {keys * VALUE_BYTES / MiB:.0f} MiB; server VmHWM +{growth / MiB:.1f} MiB")
        assert growth < SERVER_GROWTH_LIMIT
        restored = str(tmp_path / "restored")
        rc, out, err, maxrss = run_measured("restore", "--archive-url", url, *ep,
                                            "--data-dir", restored, "--latest")
        assert rc == 0, out + err
        print(f"S3 restore --latest: max RSS {maxrss / MiB:.0f} MiB\n{out}")
        assert "/00000000000000000000-" not in out.split("base:")[1].split("\n")[0], out
        assert maxrss < RESTORE_RSS_LIMIT
        assert not [f for f in os.listdir(restored) if f.endswith(".spool")]
        check_restored(restored, want)
        rc, out, err, _ = run_measured("archive", "verify", "--archive-url", url, *ep,
                                       "--scratch-dir", str(tmp_path))
        assert rc == 0 and "verify OK" in out, out + err
        assert not [f for f in os.listdir(tmp_path) if f.endswith(".spool")]
        assert not proxy.rejected(), proxy.rejected()[:3]
    finally:
        proxy.stop()
        s3.stop()


def test_records_larger_than_the_read_buffers_round_trip(tmp_path):
    """Values larger than the 1 MiB pieces the base is written, compressed, decompressed
    and parsed in (a record spans several of them) restore exactly, next to tiny ones."""
    data = str(tmp_path / "data")
    arch = f"file://{tmp_path / 'archive'}"
    srv = Server(data, arch, ["--archive-base-every-entries", "40", "--archive-interval", "200ms",
                              "--max-request-bytes", str(8 * MiB)]).start()
    want = {}
    try:
        srv.wait_archiving()
        ch = grpc.insecure_channel(srv.endpoint, options=[("grpc.max_send_message_length", -1)])
        kv = etcdrpc.KVStub(ch)
        sizes = [0, 1, 3 * MiB + 7, 127, MiB, MiB - 1, MiB + 1, 5 * MiB, 2, 1 << 16]
        for i in range(50):
            val = os.urandom(sizes[i % len(sizes)])
            key = b"big/%04d" % i
            kv.Put(etcdrpc.PutRequest(key=key, value=val), timeout=30)
            want[key] = hashlib.sha256(val).digest()
        ch.close()
        wait_for(lambda: bases_shipped(srv) >= 2, 60, "a base of the large values")
    finally:
        assert srv.stop() == 0
    restored = str(tmp_path / "restored")
    rc, out, err, _ = run_measured("restore", "--archive-url", arch, "--data-dir", restored,
                                   "--latest")
    assert rc == 0, out + err
    assert "/00000000000000000000-" not in out.split("base:")[1].split("\n")[0], out
    check_restored(restored, want)
    rc, out, err, _ = run_measured("archive", "verify", "--deep", "--archive-url", arch)
    assert rc == 0 and "verify OK" in out, out + err
