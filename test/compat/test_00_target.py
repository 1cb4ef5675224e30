"""The server under test exists, starts on loopback, stops on SIGTERM and keeps its data."""

import os
import signal

import pytest

import compatlib as cl
from compatlib import etcdctl


def test_target_binary_present():
    if cl.TARGET == "tidemark":
        assert os.path.isfile(cl.TIDEMARK_BIN) and os.access(cl.TIDEMARK_BIN, os.X_OK), (
            f"tidemark binary not found or not executable at {cl.TIDEMARK_BIN} "
            f"(set TIDEMARK_BIN, build the project, or run with TM_TARGET=etcd)")
    else:
        assert cl.TARGET == "etcd", f"TM_TARGET must be etcd or tidemark, not {cl.TARGET!r}"
    for b in (cl.ETCD_BIN, cl.ETCDCTL_BIN):
        assert os.access(b, os.X_OK), f"{b} missing (Debian packages etcd-server, etcd-client)"
    out = etcdctl(None, "version", endpoints="127.0.0.1:1").stdout
    assert "etcdctl version: 3.4." in out, out


def test_serves_and_stops_on_sigterm(server_factory):
    srv = server_factory(name="sigterm")
    res = etcdctl(srv, "endpoint", "health")
    assert f"{srv.endpoint} is healthy" in res.stderr + res.stdout
    rc = srv.stop(signal.SIGTERM)
    assert not srv.killed_after_timeout, f"{srv.kind} ignored SIGTERM for {cl.STOP_TIMEOUT}s"
    assert rc in (0, -signal.SIGTERM), f"unexpected exit status {rc} after SIGTERM"


def test_restart_keeps_data_revision_and_identity(fresh_server):
    srv = fresh_server
    for i in range(5):
        etcdctl(srv, "put", f"/restart/k{i}", f"v{i}")
    etcdctl(srv, "del", "/restart/k0")
    before = etcdctl(srv, "get", "/restart/", "--prefix", "-w", "json").json()
    status_before = etcdctl(srv, "endpoint", "status", "-w", "json").json()[0]["Status"]
    assert before["header"]["revision"] == 7
    srv.restart()
    after = etcdctl(srv, "get", "/restart/", "--prefix", "-w", "json").json()
    status_after = etcdctl(srv, "endpoint", "status", "-w", "json").json()[0]["Status"]
    assert cl.normalize(after) == cl.normalize(before)
    assert after["header"]["revision"] == 7
    for f in ("cluster_id", "member_id"):
        assert status_after["header"][f] == status_before["header"][f], f"{f} changed on restart"
    # the revision counter continues, it does not restart
    assert etcdctl(srv, "put", "/restart/k9", "x", "-w", "json").json()["header"]["revision"] == 8
