"""etcdctl 3.4 maintenance/cluster commands: compaction, endpoint status/health/hashkv,
snapshot save, defrag, member list, alarm list, check perf."""

import os

import pytest

import compatlib as cl
from compatlib import etcdctl, etcdctl_err

pytestmark = pytest.mark.etcdctl

COMPACTED = "etcdserver: mvcc: required revision has been compacted"
FUTURE = "etcdserver: mvcc: required revision is a future revision"


def parse_table(text):
    """Rows of an etcdctl ``-w table`` output as dicts keyed by the column titles."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def put(srv, key, value):
    return int(etcdctl(srv, "put", key, value, "-w", "json").json()["header"]["revision"])


def test_compaction(fresh_server):
    srv = fresh_server
    revs = [put(srv, "/c/k", f"v{i}") for i in range(6)]  # revisions 2..7
    assert revs == list(range(2, 8))
    put(srv, "/c/other", "x")  # rev 8
    assert etcdctl(srv, "compaction", 5).stdout == "compacted revision 5\n"
    # below the compaction revision: exact error
    assert etcdctl_err(srv, "get", "/c/k", "--rev=4") == COMPACTED
    assert etcdctl_err(srv, "get", "/c/k", "--rev=2") == COMPACTED
    # exactly at the compaction revision is still readable
    assert etcdctl(srv, "get", "/c/k", "--rev=5", "--print-value-only").stdout == "v3\n"
    assert etcdctl(srv, "get", "/c/k", "--rev=7", "--print-value-only").stdout == "v5\n"
    # future revision
    assert etcdctl_err(srv, "get", "/c/k", "--rev=9") == FUTURE
    assert etcdctl_err(srv, "get", "/c/k", "--rev=1000000") == FUTURE
    # compacting again at or below the compaction revision, or in the future, fails
    assert etcdctl_err(srv, "compaction", 5) == COMPACTED
    assert etcdctl_err(srv, "compaction", 3) == COMPACTED
    assert etcdctl_err(srv, "compaction", 9) == FUTURE
    # compaction does not create a revision; latest data intact
    res = etcdctl(srv, "get", "/c/", "--prefix", "-w", "json").json()
    assert res["header"]["revision"] == 8 and res["count"] == 2
    assert res["kvs"][0]["version"] == 6 and res["kvs"][0]["create_revision"] == 2
    # physical compaction at the current revision is allowed
    assert etcdctl(srv, "compaction", 8, "--physical").stdout == "compacted revision 8\n"
    assert etcdctl_err(srv, "get", "/c/k", "--rev=7") == COMPACTED
    assert etcdctl(srv, "get", "/c/k", "--print-value-only").stdout == "v5\n"
    # a txn with a range at a compacted revision fails as a whole
    inp = cl.txn_input([], ["put /c/new x", "get /c/k --rev=3"], [])
    assert etcdctl_err(srv, "txn", input=inp) == COMPACTED
    assert etcdctl(srv, "get", "/c/new").stdout == ""
    # compact_revision shows up in hashkv
    hk = etcdctl(srv, "endpoint", "hashkv", "-w", "json").json()[0]["HashKV"]
    assert hk["compact_revision"] == 8


def test_endpoint_status(server):
    st = etcdctl(server, "endpoint", "status", "-w", "json").json()
    assert isinstance(st, list) and len(st) == 1
    assert st[0]["Endpoint"] == server.endpoint
    s = st[0]["Status"]
    hdr = s["header"]
    for f in ("cluster_id", "member_id", "revision", "raft_term"):
        assert isinstance(hdr.get(f), int) and hdr[f] > 0, f"Status.header.{f}: {hdr}"
    assert s["leader"] == hdr["member_id"], "single member must report itself as leader"
    assert isinstance(s.get("version"), str) and s["version"].startswith("3.4."), s
    assert isinstance(s.get("dbSize"), int) and s["dbSize"] > 0
    for f in ("raftIndex", "raftTerm", "raftAppliedIndex"):
        assert isinstance(s.get(f), int) and s[f] > 0, f"Status.{f}: {s}"
    assert s["raftTerm"] == hdr["raft_term"]
    assert "errors" not in s or s["errors"] == []
    assert not s.get("isLearner")
    if "dbSizeInUse" in s:
        assert 0 < s["dbSizeInUse"] <= s["dbSize"]
    # the table/simple output shows IS LEADER = true
    fields = [f.strip() for f in etcdctl(server, "endpoint", "status").stdout.strip().split(",")]
    assert fields[0] == server.endpoint and fields[1] == f"{hdr['member_id']:x}"
    assert fields[2] == s["version"] and fields[4] == "true" and fields[5] == "false", fields
    row = parse_table(etcdctl(server, "endpoint", "status", "-w", "table").stdout)
    assert len(row) == 1 and row[0]["IS LEADER"] == "true" and row[0]["ENDPOINT"] == server.endpoint


def test_endpoint_health(server):
    res = etcdctl(server, "endpoint", "health")
    assert f"{server.endpoint} is healthy: successfully committed proposal" in res.stdout + res.stderr
    h = etcdctl(server, "endpoint", "health", "-w", "json").json()
    assert len(h) == 1 and h[0]["endpoint"] == server.endpoint and h[0]["health"] is True
    assert "error" not in h[0] or not h[0]["error"]
    # --cluster uses the clientURLs from MemberList: they must be reachable
    res = etcdctl(server, "endpoint", "health", "--cluster")
    assert f"{server.url} is healthy" in res.stdout + res.stderr


def test_endpoint_hashkv(fresh_server):
    srv = fresh_server
    hk = etcdctl(srv, "endpoint", "hashkv", "-w", "json").json()
    assert len(hk) == 1 and hk[0]["Endpoint"] == srv.endpoint
    h = hk[0]["HashKV"]
    assert isinstance(h.get("hash", 0), int)
    assert h["compact_revision"] == -1, "never compacted => compact_revision -1"
    assert h["header"]["revision"] == 1 and h["header"]["member_id"] > 0
    put(srv, "/h/a", "1")
    put(srv, "/h/b", "2")
    h2 = etcdctl(srv, "endpoint", "hashkv", "-w", "json").json()[0]["HashKV"]
    h2b = etcdctl(srv, "endpoint", "hashkv", "-w", "json").json()[0]["HashKV"]
    assert h2["header"]["revision"] == 3
    assert h2["hash"] == h2b["hash"], "hash must be stable while nothing changes"
    assert h2["hash"] != h.get("hash", 0), "hash must change with the key space"
    # --rev: hashing an older revision; header still carries the current revision
    h3 = etcdctl(srv, "endpoint", "hashkv", "--rev=2", "-w", "json").json()[0]["HashKV"]
    assert h3["header"]["revision"] == 3 and isinstance(h3.get("hash", 0), int)
    out = etcdctl(srv, "endpoint", "hashkv").stdout.strip()
    assert out == f"{srv.endpoint}, {h2['hash']}"


def test_snapshot_save(server, ns, tmp_path):
    for i in range(20):
        etcdctl(server, "put", f"{ns}k{i}", "x" * 1000)
    path = tmp_path / "snap.db"
    res = etcdctl(server, "snapshot", "save", str(path))
    assert f"Snapshot saved at {path}" in res.stdout + res.stderr
    size = os.path.getsize(path)
    assert size > 20 * 1000 and size % 512 == 32, f"snapshot size {size} (mod 512 = {size % 512})"
    assert not os.path.exists(str(path) + ".part")
    # server still fine
    assert etcdctl(server, "get", f"{ns}k3", "--print-value-only").stdout == "x" * 1000 + "\n"


def test_defrag(server, ns):
    for i in range(10):
        etcdctl(server, "put", f"{ns}k{i}", f"v{i}")
    etcdctl(server, "del", f"{ns}k", "--prefix")
    etcdctl(server, "put", f"{ns}keep", "kept")
    res = etcdctl(server, "defrag")
    assert res.stdout == f"Finished defragmenting etcd member[{server.endpoint}]\n"
    assert etcdctl(server, "get", f"{ns}keep", "--print-value-only").stdout == "kept\n"
    st = etcdctl(server, "endpoint", "status", "-w", "json").json()[0]["Status"]
    assert st["dbSize"] > 0
    res = etcdctl(server, "defrag", "--cluster")
    assert res.stdout == f"Finished defragmenting etcd member[{server.url}]\n"


def test_member_list(server):
    ml = etcdctl(server, "member", "list", "-w", "json").json()
    assert "header" in ml and ml["header"]["cluster_id"] > 0 and ml["header"]["member_id"] > 0
    assert len(ml["members"]) == 1
    m = ml["members"][0]
    assert m["ID"] == ml["header"]["member_id"]
    assert m["name"] == server.name
    assert m["clientURLs"] == [server.url]
    assert isinstance(m.get("peerURLs"), list) and len(m["peerURLs"]) >= 1
    assert not m.get("isLearner")
    fields = [f.strip() for f in etcdctl(server, "member", "list").stdout.strip().split(",")]
    assert fields[0] == f"{m['ID']:x}" and fields[1] == "started" and fields[2] == server.name
    assert fields[4] == server.url and fields[5] == "false"


def test_alarm_list_empty(server):
    res = etcdctl(server, "alarm", "list")
    assert res.stdout == ""
    js = etcdctl(server, "alarm", "list", "-w", "json").json()
    assert not js.get("alarms")


def test_version_reported_consistently(server):
    st = etcdctl(server, "endpoint", "status", "-w", "json").json()[0]["Status"]
    status, _, body = cl.http_request(server, "GET", "/version")
    assert status == 200
    import json
    v = json.loads(body)
    assert v["etcdserver"] == st["version"]


@pytest.mark.slow
def test_check_perf_small(fresh_server):
    res = etcdctl(fresh_server, "check", "perf", "--load=s", timeout=240, check=False)
    lines = res.stdout.strip().splitlines()
    assert res.rc == 0 and lines and lines[-1] == "PASS", res
    assert any(l.startswith("PASS: Throughput is") for l in lines), res
    # the check cleans up after itself
    assert etcdctl(fresh_server, "get", "/etcdctl-check-perf/", "--prefix", "--keys-only").stdout == ""
