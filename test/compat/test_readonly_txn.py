"""Txns made only of ranges: served like a linearizable Range, outside the commit log (etcd 3.4
serves them outside raft too). Checked through etcd's own metric: such a txn commits no
proposal, while a txn with a write -- or with a nested txn, which etcd 3.4 never counts as
read-only -- commits one; and a range-only txn always sees the write acknowledged just before
it. Holds for etcd 3.4 as well (TM_TARGET=etcd)."""

import re
import urllib.request

import grpc
import pytest

import compatlib as cl  # noqa: F401  (test environment)

pytestmark = pytest.mark.python

T = 15


def committed(srv):
    body = urllib.request.urlopen(f"http://{srv.endpoint}/metrics", timeout=T).read().decode()
    m = re.search(r"^etcd_server_proposals_committed_total (\S+)$", body, re.M)
    assert m, "etcd_server_proposals_committed_total missing from /metrics"
    return float(m.group(1))


def test_read_only_txn_skips_the_log_and_is_linearizable(server, ns):
    from etcd3 import etcdrpc as R
    ch = grpc.insecure_channel(server.endpoint)
    try:
        kv = R.KVStub(ch)
        key, other = (ns + "ro").encode(), (ns + "other").encode()
        kv.Put(R.PutRequest(key=key, value=b"v0"), timeout=T)

        def ro_txn(nested=False):
            inner = R.TxnRequest(compare=[R.Compare(key=key, target=R.Compare.VERSION,
                                                    result=R.Compare.GREATER, version=0)],
                                 success=[R.RequestOp(request_range=R.RangeRequest(key=key))])
            success = [R.RequestOp(request_range=R.RangeRequest(key=key))]
            if nested:
                success.append(R.RequestOp(request_txn=inner))
            return kv.Txn(R.TxnRequest(
                compare=[R.Compare(key=key, target=R.Compare.VERSION, result=R.Compare.GREATER,
                                   version=0)],
                success=success,
                failure=[R.RequestOp(request_range=R.RangeRequest(key=other))]), timeout=T)

        # Linearizable: each read-only txn sees the put acknowledged just before it.
        for i in range(1, 30):
            put = kv.Put(R.PutRequest(key=key, value=f"v{i}".encode()), timeout=T)
            r = ro_txn(nested=i % 2 == 0)
            assert r.succeeded
            assert r.responses[0].response_range.kvs[0].value == f"v{i}".encode()
            assert r.header.revision >= put.header.revision
            if i % 2 == 0:
                nested = r.responses[1].response_txn
                assert nested.succeeded
                assert nested.responses[0].response_range.kvs[0].value == f"v{i}".encode()

        before = committed(server)
        for _ in range(20):
            assert ro_txn().succeeded
        assert committed(server) == before, "range-only txns went through the commit log"
        ro_txn(nested=True)
        assert committed(server) == before + 1, "etcd 3.4 commits txns with a nested txn"
        before += 1

        kv.Txn(R.TxnRequest(success=[R.RequestOp(request_put=R.PutRequest(key=other, value=b"x"))]),
               timeout=T)
        assert committed(server) >= before + 1, "a txn with a write must be committed"
        # A range at a future revision inside a read-only txn: etcd's error, unchanged.
        with pytest.raises(grpc.RpcError) as e:
            kv.Txn(R.TxnRequest(success=[R.RequestOp(request_range=R.RangeRequest(
                key=key, revision=r.header.revision + 1000))]), timeout=T)
        assert e.value.code() == grpc.StatusCode.OUT_OF_RANGE
        assert e.value.details() == "etcdserver: mvcc: required revision is a future revision"
    finally:
        ch.close()
