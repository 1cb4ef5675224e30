"""Defragment runs beside writes: puts keep completing while it works.

etcd's defrag blocks every write for its whole duration; ours compacts
storage on a background thread, so writers are never stalled behind it. The
test asserts behaviour, not timing: with enough data that the defragment
takes a while, puts issued after it started are acknowledged before it ends.
"""
import threading
import time

import grpc
from etcd3 import etcdrpc

from tmserver import Server


def test_puts_complete_while_defragment_runs(tmp_path):
    srv = Server(str(tmp_path / "data")).start()
    try:
        ch = grpc.insecure_channel(srv.endpoint)
        kv = etcdrpc.KVStub(ch)
        mt = etcdrpc.MaintenanceStub(ch)
        # Enough versions that compacting storage is real work.
        value = b"x" * 512
        # At most 1000 in flight: beyond etcd's 5000-entry apply backlog the
        # server (rightly) answers "too many requests".
        for start in range(0, 60000, 1000):
            futures = [kv.Put.future(etcdrpc.PutRequest(key=b"d/%06d" % (i % 20000), value=value))
                       for i in range(start, start + 1000)]
            for f in futures:
                f.result(timeout=60)
        cur = kv.Range(etcdrpc.RangeRequest(key=b"d/", range_end=b"d0", count_only=True)).header.revision
        kv.Compact(etcdrpc.CompactionRequest(revision=cur, physical=True), timeout=60)

        done = threading.Event()
        during = []

        def defrag():
            mt.Defragment(etcdrpc.DefragmentRequest(), timeout=120)
            done.set()

        t = threading.Thread(target=defrag)
        t.start()
        i = 0
        while not done.is_set():
            kv.Put(etcdrpc.PutRequest(key=b"during/%d" % i, value=b"v"), timeout=10)
            if not done.is_set():
                during.append(i)
            i += 1
        t.join()
        assert during, "no put was acknowledged while Defragment ran (writes blocked?)"
        # Data intact after defragment.
        r = kv.Range(etcdrpc.RangeRequest(key=b"d/", range_end=b"d0", count_only=True))
        assert r.count == 20000
        r = kv.Range(etcdrpc.RangeRequest(key=b"during/", range_end=b"during0", count_only=True))
        assert r.count == i
        print(f"{len(during)} puts acknowledged while Defragment ran")
        ch.close()
    finally:
        assert srv.stop() == 0
