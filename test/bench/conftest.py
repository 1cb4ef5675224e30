"""Fixtures for the `tidemark bench` end-to-end tests: a reference etcd 3.4
(/usr/bin/etcd) and a tidemark server, both on loopback with free ports, both
stopped at the end of the module."""
import os
import shutil
import signal
import subprocess
import sys
import time

import grpc
import pytest
from etcd3 import etcdrpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "crash"))
import tmserver  # noqa: E402  (test/lib/tmserver.py: starts the tidemark binary)

ETCD = os.environ.get("ETCD_BIN", "/usr/bin/etcd")


def wait_ready(endpoint, proc, log_path, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}; see {log_path}")
        try:
            ch = grpc.insecure_channel(endpoint)
            etcdrpc.MaintenanceStub(ch).Status(etcdrpc.StatusRequest(), timeout=1)
            ch.close()
            return
        except grpc.RpcError:
            time.sleep(0.05)
    raise AssertionError(f"{endpoint} not ready within {timeout}s; see {log_path}")


class Etcd:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "etcd-data")
        self.port = tmserver.free_port()
        self.peer = tmserver.free_port()
        self.log_path = os.path.join(workdir, "etcd.log")
        self.proc = None

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        c, p = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.peer}"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [ETCD, "--name", "ref", "--data-dir", self.dir, "--listen-client-urls", c,
             "--advertise-client-urls", c, "--listen-peer-urls", p,
             "--initial-advertise-peer-urls", p, "--initial-cluster", f"ref={p}"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        wait_ready(self.endpoint, self.proc, self.log_path)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def etcd(workdir):
    assert os.path.exists(ETCD), f"{ETCD} not installed (Debian etcd-server; scripts/install-deps.sh --test)"
    e = Etcd(workdir).start()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def tidemark(workdir):
    s = tmserver.Server(os.path.join(workdir, "tm-data")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def bench_bin():
    """The binary whose `bench` subcommand is tested (tidemark itself)."""
    return tmserver.binary()
