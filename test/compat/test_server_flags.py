"""etcd-style server flags honoured by the target: --max-txn-ops, --max-request-bytes,
--quota-backend-bytes (NOSPACE alarm, as seen through etcdctl)."""

import pytest

import compatlib as cl
from compatlib import etcdctl, etcdctl_err, txn_input

pytestmark = [pytest.mark.etcdctl, pytest.mark.badinput]

NOSPACE = "etcdserver: mvcc: database space exceeded"


def test_max_txn_ops_flag(server_factory):
    srv = server_factory(max_txn_ops=4)
    s = cl.Sentinel(srv, "/flags/")
    puts = [f"put /flags/t{i} v" for i in range(5)]
    assert etcdctl_err(srv, "txn", input=txn_input([], puts, [])) == \
        "etcdserver: too many operations in txn request"
    assert etcdctl(srv, "txn", input=txn_input([], puts[:4], [])).stdout.startswith("SUCCESS")
    s.check()


def test_max_request_bytes_flag(server_factory):
    srv = server_factory(max_request_bytes=100_000)
    s = cl.Sentinel(srv, "/flags/")
    assert etcdctl_err(srv, "put", "/flags/big", input=b"x" * 150_000) == "etcdserver: request is too large"
    assert etcdctl(srv, "put", "/flags/ok", input=b"y" * 50_000).stdout == "OK\n"
    s.check()


def test_quota_backend_bytes_nospace_alarm(server_factory):
    quota = 1 << 20  # 1 MiB
    srv = server_factory(quota_backend_bytes=quota)
    s = cl.Sentinel(srv, "/quota/")
    member_id = etcdctl(srv, "endpoint", "status", "-w", "json").json()[0]["Status"]["header"]["member_id"]
    # write until the quota trips (bounded: at most 8x the quota in data)
    chunk = b"q" * 100_000
    error = None
    for i in range(80):
        res = etcdctl(srv, "put", f"/quota/big{i:03d}", input=chunk, check=False)
        if res.rc != 0:
            error = res.error
            break
    assert error == NOSPACE, f"quota of {quota} bytes never tripped (last error {error!r})"
    # the alarm is visible everywhere etcdctl looks
    assert etcdctl(srv, "alarm", "list").stdout == f"memberID:{member_id} alarm:NOSPACE \n"
    st = etcdctl(srv, "endpoint", "status", "-w", "json").json()[0]["Status"]
    assert st["errors"] == [f"memberID:{member_id} alarm:NOSPACE "]
    # writes (puts, txns with puts, lease grants) refused; reads and deletes still work
    assert etcdctl_err(srv, "put", "/quota/more", "x") == NOSPACE
    assert etcdctl_err(srv, "txn", input=txn_input([], ["put /quota/t x"], [])) == NOSPACE
    assert etcdctl_err(srv, "lease", "grant", "10") == f"failed to grant lease ({NOSPACE})"
    assert etcdctl(srv, "get", "/quota/sentinel/k0", "--print-value-only").stdout == "value-0\n"
    res = etcdctl(srv, "endpoint", "health")  # 3.4's health check ignores alarms
    assert "is healthy" in res.stdout + res.stderr
    deleted = int(etcdctl(srv, "del", "/quota/big", "--prefix").stdout)
    assert deleted >= 1
    # recover: compact + defrag + disarm
    rev = etcdctl(srv, "get", "/quota/sentinel/k0", "-w", "json").json()["header"]["revision"]
    etcdctl(srv, "compaction", rev, "--physical")
    etcdctl(srv, "defrag")
    assert etcdctl(srv, "alarm", "disarm").stdout == f"memberID:{member_id} alarm:NOSPACE \n"
    assert etcdctl(srv, "alarm", "list").stdout == ""
    assert etcdctl(srv, "put", "/quota/more", "x").stdout == "OK\n"
    st = etcdctl(srv, "endpoint", "status", "-w", "json").json()[0]["Status"]
    assert not st.get("errors")
    s.check()
