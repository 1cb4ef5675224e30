"""Point-in-time restore at >= 20 random revisions and >= 20 random times.

One client writes (puts, overwrites, deletes, txns) with short pauses; the
source server keeps its full history, so each restored store is compared
with the source AT the target revision: HashKV, and the full key set with
values and revisions. Times are taken in the pauses between writes, so the
expected revision is exact. Set TM_TEST_SEED to replay a run."""
import os
import random
import time

import grpc
from etcd3 import etcdrpc

from tmarchive import Server, read_all, restore

N_TARGETS = int(os.environ.get("TM_PITR_TARGETS", "20"))


def source_state(kv, rev):
    r = kv.Range(etcdrpc.RangeRequest(key=b"\0", range_end=b"\0", revision=rev), timeout=30)
    return {k.key: (k.value, k.create_revision, k.mod_revision, k.version) for k in r.kvs}


def restored_state(endpoint):
    ch = grpc.insecure_channel(endpoint)
    kv = etcdrpc.KVStub(ch)
    r = kv.Range(etcdrpc.RangeRequest(key=b"\0", range_end=b"\0"), timeout=30)
    ch.close()
    return r.header.revision, {k.key: (k.value, k.create_revision, k.mod_revision, k.version) for k in r.kvs}


def hashkv(endpoint, rev):
    ch = grpc.insecure_channel(endpoint)
    h = etcdrpc.MaintenanceStub(ch).HashKV(etcdrpc.HashKVRequest(revision=rev), timeout=30)
    ch.close()
    return h.hash


def test_pitr(tmp_path):
    seed = int(os.environ.get("TM_TEST_SEED", str(int(time.time()))))
    print("seed", seed)
    rng = random.Random(seed)
    arch = f"file://{tmp_path}/archive"
    src = Server(str(tmp_path / "src"), arch, ["--archive-interval", "200ms"]).start().wait_archiving()
    kv, _, ch = src.kv()
    marks = []  # (wall time in a pause, revision current at that time)
    rev = 1
    for i in range(400):
        op = rng.random()
        key = f"k{rng.randrange(60):03d}".encode()
        if op < 0.7:
            rev = kv.Put(etcdrpc.PutRequest(key=key, value=os.urandom(8).hex().encode())).header.revision
        elif op < 0.85:
            r = kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=key))
            rev = r.header.revision
        else:
            t = etcdrpc.TxnRequest(
                compare=[etcdrpc.Compare(key=key, target=etcdrpc.Compare.VERSION,
                                         result=etcdrpc.Compare.GREATER, version=0)],
                success=[etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=key, value=b"txn"))],
                failure=[etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=key + b"-new", value=b"t"))])
            rev = kv.Txn(t).header.revision
        if i % 8 == 7:
            time.sleep(0.004)
            marks.append((time.time(), rev))
            time.sleep(0.004)
    ch.close()
    time.sleep(0.5)
    assert src.stop() == 0  # SIGTERM ships everything
    src = Server(str(tmp_path / "src")).start()  # no archive: just serves history
    kv, _, ch = src.kv()
    try:
        revs = rng.sample(range(2, rev + 1), N_TARGETS)
        for i, r in enumerate(revs):
            d = str(tmp_path / f"r{i}")
            out = restore(arch, d, "--to-revision", str(r)).stdout
            assert f"revision:      {r}\n" in out, out
            s = Server(d).start()
            try:
                got_rev, got = restored_state(s.endpoint)
                assert got_rev == r
                assert got == source_state(kv, r), f"state differs at revision {r}"
                assert hashkv(s.endpoint, r) == hashkv(src.endpoint, r)
            finally:
                s.stop()
        from datetime import datetime, timezone
        for i, (t, r) in enumerate(rng.sample(marks, min(N_TARGETS, len(marks)))):
            d = str(tmp_path / f"t{i}")
            ts = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            out = restore(arch, d, "--to-time", ts).stdout
            # ms precision: the mark sits >= 4 ms away from any write.
            assert f"revision:      {r}\n" in out, (ts, r, out)
            s = Server(d).start()
            try:
                got_rev, got = restored_state(s.endpoint)
                assert got_rev == r and got == source_state(kv, r)
            finally:
                s.stop()
    finally:
        ch.close()
        src.stop()
