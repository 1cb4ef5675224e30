"""HashKV recorded in the archive (with each base and every
--archive-hashkv-interval) and checked by `tidemark archive verify --deep`,
which restores a scratch store to each recorded point and compares HashKV.

* the recorded values are the source server's own HashKV (etcd's Maintenance
  HashKV at the same revision);
* verify --deep passes on a healthy archive, naming each point it compared;
* a tampered record fails verify, naming the revision and both hashes.

Randomised workload: TM_TEST_SEED=S replays it (the seed is printed)."""
import glob
import json
import os
import random
import time

import grpc
from etcd3 import etcdrpc

from tmarchive import Server, run


def records(arch_dir):
    out = []
    for p in sorted(glob.glob(os.path.join(arch_dir, "tl-*", "hashkv", "*.json"))):
        with open(p) as f:
            out.append((p, json.load(f)))
    return out


def wait_for(pred, timeout=30, what=""):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_verify_deep_compares_recorded_hashkv(tmp_path):
    seed = int(os.environ.get("TM_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed={seed} (TM_TEST_SEED={seed} replays this test)")
    rng = random.Random(seed)
    arch = str(tmp_path / "archive")
    url = f"file://{arch}"
    srv = Server(str(tmp_path / "data"), url,
                 ["--archive-interval", "100ms", "--archive-hashkv-interval", "200ms"]).start()
    srv.wait_archiving()
    kv, maint, ch = srv.kv()
    # Puts, overwrites, deletes and one compaction: HashKV covers history and
    # the compact revision.
    compacted = False
    for i in range(300):
        k = b"k%03d" % rng.randrange(60)
        op = rng.random()
        if op < 0.75:
            kv.Put(etcdrpc.PutRequest(key=k, value=os.urandom(rng.randrange(1, 200))))
        else:
            kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=k))
        if i == 150 and not compacted:
            rev = kv.Range(etcdrpc.RangeRequest(key=b"k")).header.revision
            kv.Compact(etcdrpc.CompactionRequest(revision=rev - rng.randrange(1, 50)))
            compacted = True
    last_rev = kv.Range(etcdrpc.RangeRequest(key=b"k")).header.revision
    # A periodic record after all the writes (written once its index is archived).
    wait_for(lambda: any(r["revision"] == last_rev for _, r in records(arch)),
             what=f"a HashKV record at revision {last_rev}")
    recs = records(arch)
    assert any(r["base"] for _, r in recs), "no HashKV record with the first base"
    # The recorded value is the server's own HashKV (etcd's Maintenance.HashKV).
    compared = 0
    for _, r in recs:
        try:
            live = maint.HashKV(etcdrpc.HashKVRequest(revision=r["revision"]))
        except grpc.RpcError as e:  # recorded before the compaction
            assert e.code() == grpc.StatusCode.OUT_OF_RANGE, e
            continue
        if live.compact_revision == r["compact_revision"]:
            assert live.hash == r["hash"], (r, live)
            compared += 1
    assert compared >= 1
    ch.close()
    assert srv.stop() == 0
    n = len(records(arch))
    assert n >= 2, n

    v = run("archive", "verify", "--archive-url", url, "--deep",
            "--scratch-dir", str(tmp_path / "scratch"), check=True).stdout
    print(v)
    assert v.count("HASHKV OK: revision") == n, v
    assert f"HASHKV OK: revision {last_rev} " in v, v
    assert "verify OK" in v
    assert os.listdir(tmp_path / "scratch") == [], "scratch stores must be removed"

    # Tamper with one record's hash: verify --deep fails naming the revision
    # and both values.
    path, r = rng.choice([x for x in records(arch) if x[1]["revision"] > 1])
    good = r["hash"]
    r["hash"] = good ^ (1 << rng.randrange(32))
    with open(path, "w") as f:
        json.dump(r, f)
    v = run("archive", "verify", "--archive-url", url, "--deep", check=False)
    assert v.returncode == 1, v.stdout
    want = (f"HashKV mismatch at revision {r['revision']} (index {r['index']}, "
            f"{os.path.relpath(path, arch)}): recorded hash {r['hash']} ")
    assert want in v.stdout, v.stdout
    assert f"restored store has hash {good} at revision {r['revision']}" in v.stdout, v.stdout
    assert "verify FAILED" in v.stdout
    # A non-deep verify only checks the record decodes: still OK.
    assert run("archive", "verify", "--archive-url", url, check=False).returncode == 0
