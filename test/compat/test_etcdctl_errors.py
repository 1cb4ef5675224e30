"""Bad input through etcdctl 3.4: exact etcd error strings (reference §4), and after every case
the server still serves and previously written data is intact (``Sentinel.check``)."""

import re

import pytest

import compatlib as cl
from compatlib import etcdctl, etcdctl_err, txn_input

pytestmark = [pytest.mark.etcdctl, pytest.mark.badinput]

NO_KEY = "etcdserver: key is not provided"
TOO_MANY = "etcdserver: too many operations in txn request"
DUP = "etcdserver: duplicate key given in txn request"
COMPACTED = "etcdserver: mvcc: required revision has been compacted"
FUTURE = "etcdserver: mvcc: required revision is a future revision"
NO_LEASE = "etcdserver: requested lease not found"
TOO_LARGE = "etcdserver: request is too large"


def test_empty_key(server, sentinel, ns):
    assert etcdctl_err(server, "put", "", "v") == NO_KEY
    assert etcdctl_err(server, "get", "") == NO_KEY
    assert etcdctl_err(server, "del", "") == NO_KEY
    assert etcdctl_err(server, "txn", input=txn_input([], ['put "" v'], [])) == NO_KEY
    assert etcdctl_err(server, "txn", input=txn_input(['value("") = "x"'], [f"put {ns}x v"], [])) == NO_KEY
    # every op of both branches is validated, even the branch that would not run
    assert etcdctl_err(server, "txn", input=txn_input([], [f"put {ns}y v"], ['put "" v'])) == NO_KEY
    assert etcdctl(server, "get", ns + "x").stdout == "" and etcdctl(server, "get", ns + "y").stdout == ""
    sentinel.check()


def _puts(ns, n, tag):
    return [f"put {ns}{tag}{i} v" for i in range(n)]


def test_too_many_txn_ops(server, sentinel, ns):
    # default --max-txn-ops is 128
    assert etcdctl_err(server, "txn", input=txn_input([], _puts(ns, 129, "s"), [])) == TOO_MANY
    assert etcdctl_err(server, "txn", input=txn_input([], [], _puts(ns, 129, "f"))) == TOO_MANY
    cmps = [f'version("{ns}c{i}") = "0"' for i in range(129)]
    assert etcdctl_err(server, "txn", input=txn_input(cmps, [f"put {ns}z v"], [])) == TOO_MANY
    assert etcdctl(server, "get", ns, "--prefix", "--keys-only").stdout.count("\n") == \
        etcdctl(server, "get", ns + "sentinel/", "--prefix", "--keys-only").stdout.count("\n")
    # exactly 128 is fine, and all 128 writes share one revision
    res = etcdctl(server, "txn", "-w", "json", input=txn_input(cmps[:128], _puts(ns, 128, "ok"), [])).json()
    assert res["succeeded"] is True and len(res["responses"]) == 128
    got = etcdctl(server, "get", ns + "ok", "--prefix", "-w", "json").json()
    assert got["count"] == 128
    assert {kv["mod_revision"] for kv in got["kvs"]} == {res["header"]["revision"]}
    sentinel.check()


def test_duplicate_key_in_txn(server, sentinel, ns):
    k = ns + "dup"
    etcdctl(server, "put", k, "orig")
    assert etcdctl_err(server, "txn", input=txn_input([], [f"put {k} a", f"put {k} b"], [])) == DUP
    assert etcdctl_err(server, "txn", input=txn_input([], [f"put {k} a", f"del {k}"], [])) == DUP
    assert etcdctl_err(server, "txn", input=txn_input([], [f"del {ns} --prefix", f"put {k} a"], [])) == DUP
    # also in the branch that would not run
    assert etcdctl_err(server, "txn", input=txn_input([], [], [f"put {k} a", f"put {k} b"])) == DUP
    assert etcdctl(server, "get", k, "--print-value-only").stdout == "orig\n"
    # allowed: overlapping deletes, the same key in the two different branches, put + get
    out = etcdctl(server, "txn", input=txn_input([], [f"del {k}", f"del {ns}d --prefix"], [])).stdout
    assert out.startswith("SUCCESS")
    out = etcdctl(server, "txn", input=txn_input([], [f"put {k} s", f"get {k}"], [f"put {k} f"])).stdout
    assert out == f"SUCCESS\n\nOK\n\n{k}\ns\n"
    sentinel.check()


def test_range_at_compacted_and_future_revision(fresh_server):
    srv = fresh_server
    s = cl.Sentinel(srv, "/bad/")
    revs = [int(etcdctl(srv, "put", "/bad/k", f"v{i}", "-w", "json").json()["header"]["revision"])
            for i in range(4)]
    compact_at = revs[2]
    etcdctl(srv, "compaction", compact_at)
    assert etcdctl_err(srv, "get", "/bad/k", f"--rev={compact_at - 1}") == COMPACTED
    assert etcdctl_err(srv, "get", "/bad/", "--prefix", "--rev=1") == COMPACTED
    assert etcdctl_err(srv, "get", "/bad/k", f"--rev={revs[-1] + 1}") == FUTURE
    assert etcdctl_err(srv, "get", "/bad/k", "--rev=99999999") == FUTURE
    assert etcdctl_err(srv, "txn", input=txn_input([], ["get /bad/k --rev=2"], [])) == COMPACTED
    assert etcdctl_err(srv, "txn", input=txn_input([], [f"get /bad/k --rev={revs[-1] + 5}"], [])) == FUTURE
    assert etcdctl(srv, "get", "/bad/k", f"--rev={compact_at}", "--print-value-only").stdout == "v2\n"
    s.check()


def test_put_with_missing_lease(server, sentinel, ns):
    assert etcdctl_err(server, "put", ns + "l", "v", "--lease=1234abcd") == NO_LEASE
    assert etcdctl(server, "get", ns + "l").stdout == ""
    # in a txn only the branch that runs is checked for leases
    assert etcdctl_err(server, "txn", input=txn_input([], [f"put {ns}l v --lease=1234abcd"], [f"put {ns}m v"])) == NO_LEASE
    assert etcdctl(server, "get", ns + "m").stdout == ""
    out = etcdctl(server, "txn", input=txn_input([], [f"put {ns}m v"], [f"put {ns}l v --lease=1234abcd"])).stdout
    assert out == "SUCCESS\n\nOK\n"
    assert etcdctl(server, "get", ns + "m", "--print-value-only").stdout == "v\n"
    assert "failed to revoke lease (etcdserver: requested lease not found)" == \
        etcdctl_err(server, "lease", "revoke", "1234abcd")
    sentinel.check()


def test_ignore_value_and_ignore_lease_errors(server, sentinel, ns):
    assert etcdctl_err(server, "put", ns + "missing", "--ignore-value") == "etcdserver: key not found"
    assert etcdctl_err(server, "put", ns + "missing", "v", "--ignore-lease") == "etcdserver: key not found"
    assert etcdctl_err(server, "put", ns + "missing", "v", "--ignore-lease", "--lease=123") == \
        "etcdserver: lease is provided"
    etcdctl(server, "put", ns + "x", "orig")
    assert etcdctl(server, "put", ns + "x", "--ignore-value").stdout == "OK\n"
    kv = etcdctl(server, "get", ns + "x", "-w", "json").json()["kvs"][0]
    assert kv["value"] == cl.b64("orig") and kv["version"] == 2
    sentinel.check()


def test_oversized_values(server, sentinel, ns):
    # > --max-request-bytes (1.5 MiB default): refused by the server with etcd's text
    assert etcdctl_err(server, "put", ns + "big", input=b"a" * 1_600_000) == TOO_LARGE
    assert etcdctl(server, "get", ns + "big").stdout == ""
    # a little under the limit is accepted
    assert etcdctl(server, "put", ns + "big", input=b"b" * 1_500_000).stdout == "OK\n"
    assert etcdctl(server, "get", ns + "big", "--print-value-only").stdout == "b" * 1_500_000 + "\n"
    # > 2 MiB: etcdctl (grpc-go client limit) refuses locally
    err = etcdctl_err(server, "put", ns + "huge", input=b"c" * 2_200_000)
    assert "trying to send message larger than max" in err
    # big txn
    big = "d" * 400_000
    err = etcdctl_err(server, "txn", input=txn_input([], [f"put {ns}t{i} {big}" for i in range(4)], []))
    assert err == TOO_LARGE
    sentinel.check()


def test_lease_lifecycle(server, sentinel, ns):
    """Leases as etcdctl uses them (grant / put --lease / timetolive --keys / list / revoke)."""
    out = etcdctl(server, "lease", "grant", "60").stdout
    assert out.startswith("lease ") and out.endswith(" granted with TTL(60s)\n"), out
    lid = out.split()[1]
    assert len(lid) == 16
    etcdctl(server, "put", ns + "a", "1", f"--lease={lid}")
    etcdctl(server, "put", ns + "b", "2", f"--lease={lid}")
    kv = etcdctl(server, "get", ns + "a", "-w", "json").json()["kvs"][0]
    assert kv["lease"] == int(lid, 16)
    ttl = etcdctl(server, "lease", "timetolive", lid, "--keys").stdout
    m = re.fullmatch(r"lease (\w+) granted with TTL\(60s\), remaining\((\d+)s\), attached keys\(\[(.*)\]\)\n", ttl)
    assert m and m.group(1) == lid and 0 < int(m.group(2)) <= 60, ttl
    assert sorted(m.group(3).split()) == [ns + "a", ns + "b"], ttl  # order is unspecified
    assert lid in etcdctl(server, "lease", "list").stdout
    assert etcdctl(server, "lease", "keep-alive", "--once", lid).stdout == \
        f"lease {lid} keepalived with TTL(60)\n"
    assert etcdctl(server, "lease", "revoke", lid).stdout == f"lease {lid} revoked\n"
    assert etcdctl(server, "get", ns, "--prefix", "--keys-only").stdout.count(ns + "a") == 0
    assert etcdctl(server, "get", ns + "b").stdout == ""
    assert etcdctl(server, "lease", "timetolive", lid).stdout == f"lease {lid} already expired\n"
    assert etcdctl_err(server, "lease", "keep-alive", "--once", lid) == NO_LEASE
    sentinel.check()
