"""HTTP on the client port: grpc-gateway JSON (/v3/...), /health, /version, /metrics.

Encoding rules checked (reference §6): bytes as padded standard base64, int64/uint64 as JSON
strings, zero values omitted, proto field names, errors as {"error","message","code"} with the
gRPC-code -> HTTP-status mapping."""

import http.client
import json
import re

import pytest

import compatlib as cl
from compatlib import b64, gw, gw_ok, http_request

pytestmark = pytest.mark.gateway

HDR_KEYS = {"cluster_id", "member_id", "revision", "raft_term"}


def check_header(h, revision=None):
    assert set(h) == HDR_KEYS, f"header fields: {h}"
    for k in HDR_KEYS:
        assert isinstance(h[k], str) and h[k].isdigit() and int(h[k]) > 0, f"header.{k}={h[k]!r} (int64 as string)"
    if revision is not None:
        assert h["revision"] == str(revision)


def error_body(status, obj, http_status, code, message=None):
    assert status == http_status, f"HTTP {status} {obj}"
    assert isinstance(obj, dict) and set(obj) >= {"error", "message", "code"}, obj
    assert obj["code"] == code and obj["error"] == obj["message"], obj
    if message is not None:
        assert obj["error"] == message
    return obj["error"]


def test_kv_put_range_delete_exact_json(fresh_server):
    srv = fresh_server
    r = gw_ok(srv, "/v3/kv/range", {"key": b64("foo")})
    assert set(r) == {"header"}, f"empty range must be just a header: {r}"
    check_header(r["header"], 1)

    r = gw_ok(srv, "/v3/kv/put", {"key": b64("foo"), "value": b64("bar")})
    assert set(r) == {"header"}
    check_header(r["header"], 2)
    gw_ok(srv, "/v3/kv/put", {"key": b64("foo2"), "value": b64("")})  # rev 3, empty value
    r = gw_ok(srv, "/v3/kv/put", {"key": b64("foo"), "value": b64("baz"), "prev_kv": True})  # rev 4
    assert r["prev_kv"] == {"key": b64("foo"), "create_revision": "2", "mod_revision": "2",
                            "version": "1", "value": b64("bar")}

    r = gw_ok(srv, "/v3/kv/range", {"key": b64("foo")})
    check_header(r["header"], 4)
    assert r["kvs"] == [{"key": b64("foo"), "create_revision": "2", "mod_revision": "4",
                         "version": "2", "value": b64("baz")}]
    assert r["count"] == "1" and "more" not in r

    # empty value omitted; all keys via "\0".."\0"; sort enums by number and by name; limit as string
    r = gw_ok(srv, "/v3/kv/range", {"key": b64("foo2")})
    assert r["kvs"] == [{"key": b64("foo2"), "create_revision": "3", "mod_revision": "3", "version": "1"}]
    r = gw_ok(srv, "/v3/kv/range", {"key": "AA==", "range_end": "AA==", "sort_order": 2,
                                     "sort_target": 3, "limit": "1"})
    assert [kv["key"] for kv in r["kvs"]] == [b64("foo")] and r["more"] is True and r["count"] == "2"
    r = gw_ok(srv, "/v3/kv/range", {"key": "AA==", "range_end": "AA==", "sort_order": "DESCEND",
                                     "sort_target": "KEY", "keys_only": True})
    assert r["kvs"] == [{"key": b64("foo2"), "create_revision": "3", "mod_revision": "3", "version": "1"},
                        {"key": b64("foo"), "create_revision": "2", "mod_revision": "4", "version": "2"}]
    # lowerCamelCase input names are accepted too; count_only
    r = gw_ok(srv, "/v3/kv/range", {"key": b64("foo"), "rangeEnd": b64("fop"), "countOnly": True})
    assert r == {"header": r["header"], "count": "2"}
    # historical read
    r = gw_ok(srv, "/v3/kv/range", {"key": b64("foo"), "revision": "2"})
    assert r["kvs"][0]["value"] == b64("bar") and r["header"]["revision"] == "4"
    # /v3beta is rewritten to /v3
    r = gw_ok(srv, "/v3beta/kv/range", {"key": b64("foo")})
    assert r["kvs"][0]["value"] == b64("baz")

    r = gw_ok(srv, "/v3/kv/deleterange", {"key": b64("foo"), "range_end": b64("fop"), "prev_kv": True})
    check_header(r["header"], 5)
    assert r["deleted"] == "2" and [kv["key"] for kv in r["prev_kvs"]] == [b64("foo"), b64("foo2")]
    r = gw_ok(srv, "/v3/kv/deleterange", {"key": b64("foo")})
    assert set(r) == {"header"} and r["header"]["revision"] == "5"  # deleted 0 omitted, no new rev


def test_kv_txn_json(fresh_server):
    srv = fresh_server
    gw_ok(srv, "/v3/kv/put", {"key": b64("k"), "value": b64("v1")})  # rev 2
    body = {"compare": [{"key": b64("k"), "target": "VALUE", "result": "EQUAL", "value": b64("v1")},
                        {"key": b64("k"), "target": "VERSION", "result": "EQUAL", "version": "1"},
                        {"key": b64("k"), "target": "CREATE", "result": "LESS", "create_revision": "3"},
                        {"key": b64("k"), "target": "MOD", "result": "GREATER", "mod_revision": 1},
                        {"key": b64("k"), "target": "LEASE", "result": "EQUAL", "lease": "0"}],
            "success": [{"request_put": {"key": b64("k"), "value": b64("v2")}},
                        {"request_range": {"key": b64("k")}},
                        {"request_delete_range": {"key": b64("nothing")}}],
            "failure": [{"request_range": {"key": b64("k")}}]}
    r = gw_ok(srv, "/v3/kv/txn", body)
    check_header(r["header"], 3)
    assert r["succeeded"] is True
    assert r["responses"][0] == {"response_put": {"header": {"revision": "3"}}}
    rng = r["responses"][1]["response_range"]
    assert rng["kvs"] == [{"key": b64("k"), "create_revision": "2", "mod_revision": "3", "version": "2",
                           "value": b64("v2")}] and rng["count"] == "1"
    assert r["responses"][2] == {"response_delete_range": {"header": {"revision": "3"}}}
    # same txn again: value compare now fails -> failure branch, succeeded omitted
    r = gw_ok(srv, "/v3/kv/txn", body)
    assert "succeeded" not in r and r["header"]["revision"] == "3"
    assert r["responses"][0]["response_range"]["kvs"][0]["value"] == b64("v2")
    # numeric enum values
    r = gw_ok(srv, "/v3/kv/txn", {"compare": [{"key": b64("k"), "target": 0, "result": 1, "version": "1"}]})
    assert r["succeeded"] is True and "responses" not in r


def test_kv_compaction_json(fresh_server):
    srv = fresh_server
    for i in range(3):
        gw_ok(srv, "/v3/kv/put", {"key": b64("c"), "value": b64(str(i))})  # revs 2..4
    r = gw_ok(srv, "/v3/kv/compaction", {"revision": "3"})
    assert set(r) == {"header"}
    check_header(r["header"], 4)
    st, obj = gw(srv, "/v3/kv/range", {"key": b64("c"), "revision": "2"})
    error_body(st, obj, 400, 11, "etcdserver: mvcc: required revision has been compacted")
    st, obj = gw(srv, "/v3/kv/compaction", {"revision": "3"})
    error_body(st, obj, 400, 11, "etcdserver: mvcc: required revision has been compacted")
    st, obj = gw(srv, "/v3/kv/range", {"key": b64("c"), "revision": "99"})
    error_body(st, obj, 400, 11, "etcdserver: mvcc: required revision is a future revision")
    r = gw_ok(srv, "/v3/kv/range", {"key": b64("c"), "revision": 3})
    assert r["kvs"][0]["value"] == b64("1")
    r = gw_ok(srv, "/v3/kv/compaction", {"revision": 4, "physical": True})
    assert r["header"]["revision"] == "4"


def test_lease_maintenance_cluster_json(server, ns):
    r = gw_ok(server, "/v3/lease/grant", {"TTL": 30})
    check_header(r["header"])
    assert r["TTL"] == "30" and r["ID"].isdigit() and int(r["ID"]) > 0
    lid = r["ID"]
    gw_ok(server, "/v3/kv/put", {"key": b64(ns + "l"), "value": b64("x"), "lease": lid})
    r = gw_ok(server, "/v3/kv/range", {"key": b64(ns + "l")})
    assert r["kvs"][0]["lease"] == lid
    r = gw_ok(server, "/v3/lease/timetolive", {"ID": lid, "keys": True})
    assert r["ID"] == lid and r["grantedTTL"] == "30" and r["keys"] == [b64(ns + "l")]
    assert 0 < int(r["TTL"]) <= 30
    r = gw_ok(server, "/v3/lease/leases", {})
    assert {"ID": lid} in r["leases"]
    gw_ok(server, "/v3/lease/revoke", {"ID": lid})
    r = gw_ok(server, "/v3/kv/range", {"key": b64(ns + "l")})
    assert "kvs" not in r
    r = gw_ok(server, "/v3/lease/timetolive", {"ID": lid})
    assert r["TTL"] == "-1" and "grantedTTL" not in r
    st, obj = gw(server, "/v3/lease/revoke", {"ID": lid})
    error_body(st, obj, 404, 5, "etcdserver: requested lease not found")

    r = gw_ok(server, "/v3/maintenance/status", {})
    check_header(r["header"])
    assert r["leader"] == r["header"]["member_id"]
    assert r["version"].startswith("3.4.") and int(r["dbSize"]) > 0
    assert r["raftTerm"].isdigit() and r["raftIndex"].isdigit()

    r = gw_ok(server, "/v3/cluster/member/list", {})
    assert len(r["members"]) == 1
    m = r["members"][0]
    assert m["ID"] == r["header"]["member_id"] and m["name"] == server.name
    assert m["clientURLs"] == [server.url]

    r = gw_ok(server, "/v3/maintenance/alarm", {"action": "GET"})
    assert not r.get("alarms")
    r = gw_ok(server, "/v3/maintenance/hash", {})
    assert isinstance(r.get("hash", 0), int)


def test_watch_stream_json(server, ns):
    """POST /v3/watch: newline-delimited {"result":{...}} objects, created reply first."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        conn.request("POST", "/v3/watch", body=json.dumps({"create_request": {"key": b64(ns + "w")}}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        first = json.loads(resp.readline())
        assert first["result"]["created"] is True and "events" not in first["result"], first
        created_rev = int(first["result"]["header"]["revision"])
        rev = int(gw_ok(server, "/v3/kv/put", {"key": b64(ns + "w"), "value": b64("1")})["header"]["revision"])
        assert rev > created_rev
        ev = json.loads(resp.readline())["result"]
        assert ev["header"]["revision"] == str(rev)
        assert ev["events"] == [{"kv": {"key": b64(ns + "w"), "create_revision": str(rev),
                                        "mod_revision": str(rev), "version": "1", "value": b64("1")}}]
        gw_ok(server, "/v3/kv/deleterange", {"key": b64(ns + "w")})
        ev = json.loads(resp.readline())["result"]
        assert ev["events"] == [{"type": "DELETE", "kv": {"key": b64(ns + "w"), "mod_revision": str(rev + 1)}}]
    finally:
        conn.close()


@pytest.mark.badinput
def test_gateway_errors(server, sentinel, ns):
    # empty key
    for path in ("/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange"):
        st, obj = gw(server, path, {"key": ""})
        assert (st, obj) == (400, {"error": "etcdserver: key is not provided",
                                   "message": "etcdserver: key is not provided", "code": 3}), path
    # malformed JSON bodies -> 400 + etcd's error body shape, InvalidArgument
    for body in ('{"key":', "notjson", '{"key": "Zm9v"', "[1,2"):
        st, _, data = http_request(server, "POST", "/v3/kv/range", body)
        error_body(st, json.loads(data), 400, 3)
    # bad base64
    st, obj = gw(server, "/v3/kv/range", {"key": "Zm9"})
    assert error_body(st, obj, 400, 3).startswith("illegal base64 data at input byte")
    # missing lease
    st, obj = gw(server, "/v3/kv/put", {"key": b64(ns + "x"), "value": b64("v"), "lease": "123"})
    error_body(st, obj, 404, 5, "etcdserver: requested lease not found")
    # too many ops / duplicate keys
    st, obj = gw(server, "/v3/kv/txn", {"success": [{"request_put": {"key": b64(f"{ns}{i}")}} for i in range(129)]})
    error_body(st, obj, 400, 3, "etcdserver: too many operations in txn request")
    st, obj = gw(server, "/v3/kv/txn", {"success": [{"request_put": {"key": b64(ns + "d")}}] * 2})
    error_body(st, obj, 400, 3, "etcdserver: duplicate key given in txn request")
    # too large
    st, obj = gw(server, "/v3/kv/put", {"key": b64(ns + "big"), "value": b64(b"a" * 1_600_000)})
    error_body(st, obj, 400, 3, "etcdserver: request is too large")
    # GET on a POST-only gateway path; unknown prefix
    st, _, _ = http_request(server, "GET", "/v3/kv/range")
    assert st == 405
    st, _, _ = http_request(server, "POST", "/v3alpha/kv/range", {"key": b64("foo")})
    assert st == 404
    assert gw_ok(server, "/v3/kv/range", {"key": b64(ns + "x")}) == \
        {"header": gw_ok(server, "/v3/kv/range", {"key": b64(ns + "x")})["header"]}
    sentinel.check()


def test_health_and_version(server):
    st, hdrs, data = http_request(server, "GET", "/health")
    assert st == 200 and json.loads(data) == {"health": "true"}
    st, hdrs, data = http_request(server, "GET", "/version")
    assert st == 200
    v = json.loads(data)
    assert set(v) == {"etcdserver", "etcdcluster"}, v
    assert re.fullmatch(r"3\.4\.\d+", v["etcdserver"]) and v["etcdcluster"] == "3.4.0", v


METRICS = ["etcd_server_has_leader", "etcd_mvcc_db_total_size_in_bytes",
           "etcd_disk_wal_fsync_duration_seconds", "etcd_debugging_mvcc_keys_total",
           "grpc_server_handled_total", "process_resident_memory_bytes"]


def test_metrics(server, ns):
    cl.etcdctl(server, "put", ns + "m", "x")
    st, hdrs, data = http_request(server, "GET", "/metrics")
    assert st == 200
    ctype = {k.lower(): v for k, v in hdrs.items()}.get("content-type", "")
    assert ctype.startswith("text/plain"), ctype
    text = data.decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name_labels, _, value = line.rpartition(" ")
            samples.setdefault(re.split(r"[{ ]", name_labels)[0], []).append((name_labels, float(value)))
    for m in METRICS:
        assert f"# TYPE {m} " in text, f"metric {m} not exported"
    assert samples["etcd_server_has_leader"][0][1] == 1
    assert samples["etcd_mvcc_db_total_size_in_bytes"][0][1] > 0
    assert samples["etcd_debugging_mvcc_keys_total"][0][1] >= 1
    assert "# TYPE etcd_disk_wal_fsync_duration_seconds histogram" in text
    assert samples["etcd_disk_wal_fsync_duration_seconds_count"][0][1] > 0
    handled = [n for n, v in samples["grpc_server_handled_total"]
               if 'grpc_method="Put"' in n and 'grpc_code="OK"' in n]
    assert handled, "grpc_server_handled_total has no Put/OK series"
