"""python3-etcd3 0.12 (Debian) against the target."""

import queue

import grpc
import pytest

import compatlib as cl

pytestmark = pytest.mark.python

import etcd3  # noqa: E402  (python3-etcd3; a missing module must fail, not skip)


def client_for(srv):
    return etcd3.client(host="127.0.0.1", port=srv.port, timeout=15)


def test_get_put_delete(py, ns):
    k = ns + "k"
    value, meta = py.get(k)
    assert value is None and meta is None
    py.put(k, "v1")
    py.put(k, b"v2\x00\xffbin")
    value, meta = py.get(k)
    assert value == b"v2\x00\xffbin"
    assert meta.key == k.encode() and meta.version == 2
    assert meta.mod_revision == meta.create_revision + 1 and meta.lease_id == 0
    prev = py.put(k, "v3", prev_kv=True)
    assert prev.prev_kv.value == b"v2\x00\xffbin"
    assert py.delete(k) is True
    assert py.delete(k) is False
    assert py.get(k) == (None, None)
    resp = py.delete(ns + "nothing", return_response=True)
    assert resp.deleted == 0


def test_get_prefix_range_all_and_sorting(py, ns):
    data = {"b": "2", "a": "3", "c": "1", "ab": "4"}
    for k, v in data.items():
        py.put(ns + k, v)
    got = [(m.key.decode(), v.decode()) for v, m in py.get_prefix(ns)]
    assert got == sorted((ns + k, v) for k, v in data.items())
    got = [m.key.decode() for v, m in py.get_prefix(ns, sort_order="descend", sort_target="value")]
    assert got == [ns + k for k in ("ab", "a", "b", "c")]
    got = [m.key.decode() for v, m in py.get_prefix(ns, sort_order="ascend", sort_target="create")]
    assert got == [ns + k for k in data]
    got = [m.key.decode() for v, m in py.get_prefix(ns, keys_only=True)]
    assert got == sorted(ns + k for k in data)
    assert all(v == b"" for v, m in py.get_prefix(ns, keys_only=True))
    got = [m.key.decode() for v, m in py.get_range(ns + "a", ns + "b")]
    assert got == [ns + "a", ns + "ab"]
    # (python-etcd3 0.12 accepts but never sends limit/revision, so only count is checked)
    resp = py.get_prefix_response(ns)
    assert resp.count == 4 and not resp.more and len(resp.kvs) == 4
    assert any(m.key == (ns + "a").encode() for v, m in py.get_all())


def test_transactions(py, ns):
    k = ns + "t"
    py.put(k, "v1")
    py.put(k, "v2")
    _, meta = py.get(k)
    T = py.transactions
    ok, responses = py.transaction(
        compare=[T.value(k) == "v2", T.version(k) == 2, T.create(k) == meta.create_revision,
                 T.mod(k) == meta.mod_revision, T.version(k) > 1, T.mod(k) < meta.mod_revision + 1,
                 T.value(k) != "v1"],
        success=[T.put(k + "-s", "yes"), T.get(k)],
        failure=[T.put(k + "-f", "yes")])
    assert ok is True
    assert responses[0].WhichOneof("response") == "response_put"
    assert [(v, m.key) for v, m in responses[1]] == [(b"v2", k.encode())]
    assert py.get(k + "-s")[0] == b"yes" and py.get(k + "-f") == (None, None)

    ok, responses = py.transaction(compare=[T.version(k) == 5],
                                   success=[T.put(k + "-s2", "yes")],
                                   failure=[T.put(k + "-f2", "yes"), T.get(k + "-s"), T.delete(k + "-s")])
    assert ok is False
    assert [v for v, m in responses[1]] == [b"yes"]
    assert responses[2].response_delete_range.deleted == 1
    assert py.get(k + "-f2")[0] == b"yes" and py.get(k + "-s2") == (None, None)
    assert py.get(k + "-s") == (None, None)

    # missing key: version/create/mod are 0, value compares are false
    ok, _ = py.transaction(compare=[T.version(k + "-none") == 0, T.create(k + "-none") == 0,
                                    T.mod(k + "-none") == 0], success=[], failure=[])
    assert ok is True
    ok, _ = py.transaction(compare=[T.value(k + "-none") == ""], success=[], failure=[])
    assert ok is False


def test_nested_transaction(py, ns):
    k = ns + "n"
    py.put(k, "outer")
    T = py.transactions
    inner = etcd3.transactions.Txn(compare=[T.value(k) == "outer"],
                                   success=[T.put(k + "-inner", "then"), T.get(k)],
                                   failure=[T.put(k + "-inner", "else")])
    ok, responses = py.transaction(compare=[T.version(k) == 1], success=[inner, T.put(k + "-2", "x")],
                                   failure=[])
    assert ok is True
    assert responses[0].WhichOneof("response") == "response_txn"
    nested = responses[0].response_txn
    assert nested.succeeded is True and len(nested.responses) == 2
    assert nested.responses[1].response_range.kvs[0].value == b"outer"
    assert py.get(k + "-inner")[0] == b"then"
    # all writes of the outer and the nested txn share one revision
    _, m1 = py.get(k + "-inner")
    _, m2 = py.get(k + "-2")
    assert m1.mod_revision == m2.mod_revision


def test_replace_and_put_if_not_exists(py, ns):
    k = ns + "r"
    assert py.put_if_not_exists(k, "first") is True
    assert py.put_if_not_exists(k, "second") is False
    assert py.get(k)[0] == b"first"
    assert py.replace(k, "wrong", "x") is False
    assert py.replace(k, "first", "replaced") is True
    assert py.get(k)[0] == b"replaced"


def test_delete_prefix(py, ns):
    for i in range(4):
        py.put(f"{ns}p/{i}", str(i))
    py.put(ns + "q", "keep")
    resp = py.delete_prefix(ns + "p/")
    assert resp.deleted == 4
    assert [m.key.decode() for v, m in py.get_prefix(ns)] == [ns + "q"]


def test_status_and_members(py, server):
    st = py.status()
    assert st.leader is not None, "status().leader is None: Status.leader not found in MemberList"
    members = list(py.members)
    assert len(members) == 1
    m = members[0]
    assert st.leader.id == m.id and m.name == server.name
    assert list(m.client_urls) == [server.url]
    assert st.version.startswith("3.4.") and st.db_size > 0
    assert st.raft_index > 0 and st.raft_term > 0


def test_leases(py, ns):
    lease = py.lease(60)
    assert lease.id > 0
    py.put(ns + "l1", "a", lease=lease)
    py.put(ns + "l2", "b", lease=lease.id)
    assert py.get(ns + "l1")[1].lease_id == lease.id
    assert lease.granted_ttl == 60 and 0 < lease.remaining_ttl <= 60
    assert sorted(lease.keys) == [(ns + "l1").encode(), (ns + "l2").encode()]
    refreshed = lease.refresh()
    assert refreshed[0].TTL == 60
    lease.revoke()
    assert py.get(ns + "l1") == (None, None) and py.get(ns + "l2") == (None, None)
    info = py.get_lease_info(lease.id)
    assert info.TTL == -1
    with pytest.raises(grpc.RpcError) as ei:
        py.put(ns + "l3", "c", lease=lease.id)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND
    assert ei.value.details() == "etcdserver: requested lease not found"


def test_lock(py, ns):
    # Note: a *contended* acquire() is broken client-side in Debian's python3-etcd3 0.12 with
    # tenacity >= 8 (TypeError in its wait callback), so only uncontended use is exercised; the
    # Txn{CREATE == 0} it relies on is covered by test_replace_and_put_if_not_exists.
    name = ns.strip("/")
    lock = py.lock(name, ttl=10)
    assert lock.acquire(timeout=10) is True
    assert lock.is_acquired()
    value, meta = py.get("/locks/" + name)
    assert value == lock.uuid and meta.lease_id == lock.lease.id
    other = py.lock(name, ttl=10)
    assert not other.is_acquired()
    assert lock.release() is True
    assert py.get("/locks/" + name) == (None, None)
    assert other.acquire(timeout=10) is True
    assert other.release() is True
    assert lock.release() is False  # not the holder any more


def test_watch_events(py, ns):
    q = queue.Queue()
    wid = py.add_watch_prefix_callback(ns, q.put, prev_kv=True)
    try:
        py.put(ns + "a", "1")
        py.put(ns + "a", "2")
        py.delete(ns + "a")
        events = []
        while len(events) < 3:
            resp = q.get(timeout=10)
            assert not isinstance(resp, Exception), resp
            events.extend(resp.events)
        assert [type(e).__name__ for e in events] == ["PutEvent", "PutEvent", "DeleteEvent"]
        assert [e.value for e in events[:2]] == [b"1", b"2"]
        assert events[1].prev_value == b"1" and events[2].prev_value == b"2"
        assert events[0].mod_revision + 2 == events[2].mod_revision
    finally:
        py.cancel_watch(wid)


def test_watch_from_compacted_revision_raises(fresh_server):
    c = client_for(fresh_server)
    try:
        for i in range(4):
            c.put("/w/k", str(i))  # revisions 2..5
        c.compact(4)
        q = queue.Queue()
        with pytest.raises(etcd3.exceptions.RevisionCompactedError) as ei:
            wid = c.add_watch_callback("/w/k", q.put, start_revision=2)
            resp = q.get(timeout=10)
            if isinstance(resp, Exception):
                raise resp
        assert ei.value.compacted_revision == 4
        # exactly at the compaction revision works and replays history
        q2 = queue.Queue()
        wid = c.add_watch_callback("/w/k", q2.put, start_revision=4)
        resp = q2.get(timeout=10)
        assert not isinstance(resp, Exception), resp
        assert [e.value for e in resp.events] == [b"2", b"3"]
        c.cancel_watch(wid)
    finally:
        c.close()


def test_errors_map_to_grpc_codes(py, ns):
    with pytest.raises(grpc.RpcError) as ei:
        py.put("", "v")
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ei.value.details() == "etcdserver: key is not provided"
    T = py.transactions
    with pytest.raises(grpc.RpcError) as ei:
        py.transaction(compare=[], success=[T.put(f"{ns}{i}", "v") for i in range(129)], failure=[])
    assert (ei.value.code(), ei.value.details()) == \
        (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: too many operations in txn request")
    with pytest.raises(grpc.RpcError) as ei:
        py.put(ns + "big", b"x" * 1_600_000)
    assert (ei.value.code(), ei.value.details()) == \
        (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: request is too large")
    # > 2 MiB: refused by the server's gRPC receive limit (python has no client send limit)
    with pytest.raises(grpc.RpcError) as ei:
        py.put(ns + "huge", b"x" * 3_000_000)
    assert ei.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT)
    py.put(ns + "after", "ok")
    assert py.get(ns + "after")[0] == b"ok"


def test_compact_errors(fresh_server):
    c = client_for(fresh_server)
    try:
        c.put("/c/k", "1")
        c.put("/c/k", "2")
        c.compact(3)
        with pytest.raises(grpc.RpcError) as ei:
            c.compact(2)
        assert (ei.value.code(), ei.value.details()) == \
            (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")
        with pytest.raises(grpc.RpcError) as ei:
            c.compact(100)
        assert (ei.value.code(), ei.value.details()) == \
            (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")
        assert c.get("/c/k")[0] == b"2"
    finally:
        c.close()


def test_maintenance_calls(py, tmp_path):
    assert py.list_alarms() is not None and list(py.list_alarms()) == []
    py.defragment()
    assert isinstance(py.hash(), int)
    path = tmp_path / "py.snap"
    with open(path, "wb") as f:
        py.snapshot(f)
    assert path.stat().st_size % 512 == 32
