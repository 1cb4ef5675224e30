"""Leases end to end: expiry through the server (keys deleted in one revision), etcdctl
keep-alive streams, the JSON gateway lease routes, python refresh, and restart behaviour
(leases and attachments survive; TTLs restart; an expired lease is revoked after restart).
Expiry tests use the minimum TTL (2 s) and poll with deadlines; nothing sleeps through a TTL."""

import re
import signal
import subprocess
import threading
import time

import pytest

import compatlib as cl
from compatlib import etcdctl, etcdctl_err, wait_until

pytestmark = pytest.mark.etcdctl


def grant(server, ttl):
    out = etcdctl(server, "lease", "grant", str(ttl)).stdout
    m = re.fullmatch(r"lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)\n", out)
    assert m, out
    return m.group(1), int(m.group(2))


def revision(server):
    return int(etcdctl(server, "get", "nonexistent-key-for-rev", "-w", "json").json()
               ["header"]["revision"])


def key_exists(server, key):
    return etcdctl(server, "get", key, "--keys-only").stdout != ""


def test_min_ttl_and_expiry_deletes_keys_in_one_revision(server, ns):
    lid, ttl = grant(server, 1)
    assert ttl == 2  # raised to the minimum
    for k in ("a", "b", "c"):
        etcdctl(server, "put", ns + k, "v", f"--lease={lid}")
    etcdctl(server, "put", ns + "free", "v")
    wait_until(lambda: not key_exists(server, ns + "a"), 15, "leased key to expire")
    assert not key_exists(server, ns + "b") and not key_exists(server, ns + "c")
    assert key_exists(server, ns + "free")
    assert etcdctl(server, "lease", "timetolive", lid).stdout == f"lease {lid} already expired\n"
    assert lid not in etcdctl(server, "lease", "list").stdout


def test_expiry_is_one_revision_on_fresh_server(fresh_server):
    srv = fresh_server
    lid, _ = grant(srv, 2)
    for k in ("x", "y", "z"):
        etcdctl(srv, "put", "/exp/" + k, "v", f"--lease={lid}")
    assert revision(srv) == 4
    wait_until(lambda: revision(srv) == 5, 15, "the expiry revision")
    assert etcdctl(srv, "get", "/exp/", "--prefix", "--keys-only").stdout == ""
    # a grant with no keys expiring does not bump the revision
    lid2, _ = grant(srv, 2)
    wait_until(lambda: etcdctl(srv, "lease", "timetolive", lid2).stdout.endswith("already expired\n"),
               15, "empty lease to expire")
    assert revision(srv) == 5


def test_keep_alive_stream_keeps_lease(server, ns):
    lid, _ = grant(server, 2)
    etcdctl(server, "put", ns + "k", "v", f"--lease={lid}")
    argv = [cl.ETCDCTL_BIN, f"--endpoints={server.endpoint}", "lease", "keep-alive", lid]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cl.clean_env(ETCDCTL_API=3))
    lines = []

    def reader():
        for line in proc.stdout:
            lines.append(line)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        # etcdctl renews every TTL/3; 6 replies span > 3 s, longer than the 2 s TTL
        wait_until(lambda: len(lines) >= 6, 20, "six keep-alive replies")
        assert all(l == f"lease {lid} keepalived with TTL(2)\n" for l in lines[:6]), lines
        assert key_exists(server, ns + "k")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # without keep-alives the lease now expires and takes the key with it
    wait_until(lambda: not key_exists(server, ns + "k"), 15, "key to expire after keep-alive stops")


def test_keep_alive_reports_revoked_lease(server, ns):
    lid, _ = grant(server, 30)
    argv = [cl.ETCDCTL_BIN, f"--endpoints={server.endpoint}", "lease", "keep-alive", lid]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=cl.clean_env(ETCDCTL_API=3))
    try:
        first = proc.stdout.readline()
        assert first == f"lease {lid} keepalived with TTL(30)\n", first
        etcdctl(server, "lease", "revoke", lid)
        # etcdctl keeps the stream and, on its next renewal (every 10 s), sees TTL 0
        rest, _ = proc.communicate(timeout=30)
        assert f"lease {lid} expired or revoked." in rest, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_keep_alive_once_unknown_and_errors(server):
    assert etcdctl_err(server, "lease", "keep-alive", "--once", "1234abcd") == \
        "etcdserver: requested lease not found"
    assert etcdctl_err(server, "lease", "revoke", "1234abcd") == \
        "failed to revoke lease (etcdserver: requested lease not found)"
    assert etcdctl(server, "lease", "timetolive", "1234abcd").stdout == \
        "lease 000000001234abcd already expired\n"


def test_gateway_lease_routes(server, ns):
    g = cl.gw_ok(server, "/v3/lease/grant", {"TTL": 30, "ID": 0})
    lid = g["ID"]
    assert g["TTL"] == "30" and int(lid) > 0
    cl.gw_ok(server, "/v3/kv/put", {"key": cl.b64(ns + "k"), "value": cl.b64("v"), "lease": lid})
    for prefix in ("/v3/lease", "/v3/kv/lease"):
        t = cl.gw_ok(server, prefix + "/timetolive", {"ID": lid, "keys": True})
        assert t["ID"] == lid and t["grantedTTL"] == "30" and 0 < int(t["TTL"]) <= 30
        assert t["keys"] == [cl.b64(ns + "k")]
        ls = cl.gw_ok(server, prefix + "/leases", {})
        assert {"ID": lid} in ls["leases"]
    cl.gw_ok(server, "/v3/kv/lease/revoke", {"ID": lid})
    t = cl.gw_ok(server, "/v3/lease/timetolive", {"ID": lid})
    assert t["TTL"] == "-1" and "grantedTTL" not in t
    status, body = cl.gw(server, "/v3/lease/revoke", {"ID": lid})
    assert status == 404 and body["error"] == "etcdserver: requested lease not found", body
    status, body = cl.gw(server, "/v3/lease/grant", {"TTL": 9_000_000_001})
    assert status == 400 and body["error"] == "etcdserver: too large lease TTL", body
    status, body = cl.gw(server, "/v3/lease/grant", {"TTL": 10, "ID": 77})
    assert status == 200, body
    status, body = cl.gw(server, "/v3/lease/grant", {"TTL": 10, "ID": 77})
    assert status == 412 and body["error"] == "etcdserver: lease already exists", body
    cl.gw_ok(server, "/v3/lease/revoke", {"ID": 77})


@pytest.mark.python
def test_python_refresh_and_lease_info(py, ns):
    lease = py.lease(2)
    assert lease.granted_ttl == 2
    py.put(ns + "k", "v", lease=lease)
    # let the remaining TTL fall below 1 s, then refresh; four rounds outlive the 2 s TTL
    for _ in range(4):
        wait_until(lambda: py.get_lease_info(lease.id).TTL == 0, 5, "TTL to tick down")
        assert lease.refresh()[0].TTL == 2
    assert py.get(ns + "k")[0] == b"v"
    info = py.get_lease_info(lease.id)
    assert info.grantedTTL == 2 and info.keys == [(ns + "k").encode()]
    wait_until(lambda: py.get(ns + "k") == (None, None), 15, "key to expire")
    assert py.get_lease_info(lease.id).TTL == -1
    assert lease.refresh()[0].TTL == 0  # an expired lease cannot be revived


def test_restart_keeps_leases_and_revokes_expired(server_factory):
    srv = server_factory(name="lease-restart")
    long_id, _ = grant(srv, 600)
    t0 = time.monotonic()
    short_id, _ = grant(srv, 5)
    etcdctl(srv, "put", "/r/long1", "v", f"--lease={long_id}")
    etcdctl(srv, "put", "/r/long2", "v", f"--lease={long_id}")
    etcdctl(srv, "put", "/r/short", "v", f"--lease={short_id}")
    etcdctl(srv, "put", "/r/moved", "v", f"--lease={long_id}")
    etcdctl(srv, "put", "/r/moved", "v")  # detached again
    assert key_exists(srv, "/r/short"), "setup took longer than the short lease's TTL"
    srv.stop()
    # stay down until the short lease's deadline has passed
    wait_until(lambda: time.monotonic() > t0 + 6, 10, "the short lease's TTL to pass")
    srv.proc = None
    srv.start()
    out = etcdctl(srv, "lease", "timetolive", long_id, "--keys").stdout
    m = re.fullmatch(r"lease \w+ granted with TTL\(600s\), remaining\((\d+)s\), "
                     r"attached keys\(\[(.*)\]\)\n", out)
    assert m and int(m.group(1)) >= 590, out  # TTL restarts in full after a restart
    assert sorted(m.group(2).split()) == ["/r/long1", "/r/long2"], out
    # renewals are not persisted: the short lease restarted with its full TTL, so it and its
    # key are still there; then it expires and its key goes with it
    assert etcdctl(srv, "lease", "timetolive", short_id).stdout.startswith(
        f"lease {short_id} granted with TTL(5s)")
    wait_until(lambda: not key_exists(srv, "/r/short"), 15, "short lease to expire after restart")
    assert etcdctl(srv, "lease", "timetolive", short_id).stdout == \
        f"lease {short_id} already expired\n"
    assert key_exists(srv, "/r/long1") and key_exists(srv, "/r/moved")
    assert etcdctl(srv, "get", "/r/moved", "-w", "json").json()["kvs"][0].get("lease", 0) == 0
    # and a second restart still agrees
    srv.restart()
    assert sorted(etcdctl(srv, "get", "/r/", "--prefix", "--keys-only").stdout.split()) == \
        ["/r/long1", "/r/long2", "/r/moved"]
    assert short_id not in etcdctl(srv, "lease", "list").stdout
    etcdctl(srv, "lease", "revoke", long_id)
    assert etcdctl(srv, "get", "/r/", "--prefix", "--keys-only").stdout.split() == ["/r/moved"]


def test_sigkill_replays_lease_entries(server_factory):
    """Lease grants, attachments and revokes acknowledged before a SIGKILL survive it (WAL
    replay re-applies them in the same batches as the keys)."""
    srv = server_factory(name="lease-kill")
    a, _ = grant(srv, 600)
    b, _ = grant(srv, 600)
    etcdctl(srv, "put", "/k/a1", "v", f"--lease={a}")
    etcdctl(srv, "put", "/k/b1", "v", f"--lease={b}")
    etcdctl(srv, "put", "/k/a2", "v", f"--lease={a}")
    etcdctl(srv, "lease", "revoke", b)
    rev = revision(srv)
    srv.stop(signal.SIGKILL)
    srv.proc = None
    srv.start()
    assert revision(srv) == rev
    out = etcdctl(srv, "lease", "timetolive", a, "--keys").stdout
    assert "attached keys([/k/a1 /k/a2])" in out or "attached keys([/k/a2 /k/a1])" in out, out
    assert etcdctl(srv, "lease", "list").stdout.split()[3:] == [a]
    assert sorted(etcdctl(srv, "get", "/k/", "--prefix", "--keys-only").stdout.split()) == \
        ["/k/a1", "/k/a2"]
