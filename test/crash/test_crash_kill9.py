"""Crash test: 50 concurrent writers, SIGKILL at random moments >= 20 times.

After every restart: every acknowledged put is readable at its exact
revision with its value, the revisions of all keys are gapless (every
revision 2..current belongs to exactly one key, since each put writes a new
key), and HashKV at a fixed earlier revision is unchanged by the restart.
The random seed is printed; set TM_TEST_SEED to replay one.
"""
import os
import random
import threading
import time

import grpc
from etcd3 import etcdrpc

from tmserver import Server

WRITERS = 50
KILLS = int(os.environ.get("TM_CRASH_KILLS", "20"))


def writer(endpoint, wid, stop, acked, lock):
    ch = grpc.insecure_channel(endpoint)
    kv = etcdrpc.KVStub(ch)
    seq = 0
    while not stop.is_set():
        key = f"crash/{wid:02d}/{time.monotonic_ns()}/{seq}".encode()
        val = os.urandom(16).hex().encode()
        seq += 1
        try:
            resp = kv.Put(etcdrpc.PutRequest(key=key, value=val), timeout=5)
        except grpc.RpcError:
            # Unknown outcome (server killed mid-request): not acknowledged.
            if stop.is_set():
                break
            time.sleep(0.01)
            continue
        with lock:
            acked.append((key, val, resp.header.revision))
    ch.close()


def verify(endpoint, acked, hash_at, rng):
    ch = grpc.insecure_channel(endpoint, options=[("grpc.max_receive_message_length", -1)])
    kv = etcdrpc.KVStub(ch)
    mt = etcdrpc.MaintenanceStub(ch)
    # 1. every acknowledged put is there with its value and revision. Keys are
    # never rewritten, so the latest version of a key is the acknowledged one.
    r = kv.Range(etcdrpc.RangeRequest(key=b"crash/", range_end=b"crash0"), timeout=60)
    current = r.header.revision
    have = {k.key: (k.value, k.mod_revision) for k in r.kvs}
    for key, val, rev in acked:
        assert key in have, f"acknowledged put {key!r}@{rev} lost"
        assert have[key] == (val, rev), (key, rev, have[key])
    # ... and readable AT its exact revision (a random sample of historic reads).
    for key, val, rev in rng.sample(acked, min(200, len(acked))):
        h = kv.Range(etcdrpc.RangeRequest(key=key, revision=rev), timeout=10)
        assert h.count == 1 and h.kvs[0].value == val and h.kvs[0].mod_revision == rev
        before = kv.Range(etcdrpc.RangeRequest(key=key, revision=rev - 1), timeout=10)
        assert before.count == 0, f"{key!r} visible before its revision {rev}"
    # 2. gapless revisions: each revision 2..current is exactly one key's
    revs = sorted(m for _, m in have.values())
    assert revs == list(range(2, current + 1)), (
        f"revisions not gapless: {len(revs)} keys for revisions 2..{current}")
    # 3. HashKV at fixed revisions unchanged
    for rev, h in hash_at.items():
        got = mt.HashKV(etcdrpc.HashKVRequest(revision=rev), timeout=30).hash
        assert got == h, f"HashKV({rev}) changed across restart: {h} -> {got}"
    ch.close()
    return current


def test_sigkill_under_load(tmp_path):
    seed = int(os.environ.get("TM_TEST_SEED", random.randrange(1 << 30)))
    print(f"crash test seed: {seed} (TM_TEST_SEED={seed} to replay)")
    rng = random.Random(seed)
    srv = Server(str(tmp_path / "data"))
    acked, lock = [], threading.Lock()
    hash_at = {}
    try:
        srv.start()
        for cycle in range(KILLS):
            stop = threading.Event()
            threads = [threading.Thread(target=writer, args=(srv.endpoint, w, stop, acked, lock))
                       for w in range(WRITERS)]
            for t in threads:
                t.start()
            # Let a random amount of load through, then kill mid-flight.
            time.sleep(rng.uniform(0.2, 1.2))
            before = len(acked)
            srv.kill()
            stop.set()
            for t in threads:
                t.join(30)
            assert len(acked) > before or len(acked) > 0, "no write was acknowledged"
            srv.start()
            current = verify(srv.endpoint, acked, hash_at, rng)
            # Pin a hash at the current revision; it must survive later crashes.
            ch = grpc.insecure_channel(srv.endpoint)
            hash_at[current] = etcdrpc.MaintenanceStub(ch).HashKV(
                etcdrpc.HashKVRequest(revision=current), timeout=30).hash
            ch.close()
            print(f"cycle {cycle}: {len(acked)} acknowledged puts, revision {current}")
        assert len(hash_at) == KILLS
    except BaseException:
        if os.environ.get("TM_CRASH_KEEP"):
            print(f"keeping server pid {srv.proc.pid} for inspection")
            srv.proc = None
        raise
    finally:
        srv.kill()
