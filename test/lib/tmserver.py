"""Start/stop a tidemark server for process-level tests (loopback only)."""
import os
import signal
import socket
import subprocess
import time

import grpc
from etcd3 import etcdrpc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))  # repo root


def binary():
    path = os.environ.get("TIDEMARK_BIN", os.path.join(ROOT, "build", "src", "cli", "tidemark"))
    if not os.path.exists(path):
        raise AssertionError(f"tidemark binary not found at {path}: build first or set TIDEMARK_BIN")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir, port=None, extra=()):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.extra = list(extra)
        self.proc = None
        self.log_path = os.path.join(os.path.dirname(data_dir.rstrip("/")),
                                     os.path.basename(data_dir.rstrip("/")) + ".log")

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=20):
        url = f"http://{self.endpoint}"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [binary(), "serve", "--data-dir", self.data_dir, "--listen-client-urls", url,
             "--advertise-client-urls", url, *self.extra],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"tidemark exited with {self.proc.returncode}; see {self.log_path}")
            try:
                ch = grpc.insecure_channel(self.endpoint)
                etcdrpc.MaintenanceStub(ch).Status(etcdrpc.StatusRequest(), timeout=1)
                ch.close()
                return self
            except grpc.RpcError:
                time.sleep(0.05)
        raise AssertionError(f"tidemark did not become ready in {timeout}s; see {self.log_path}")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError("tidemark did not stop within %ss of SIGTERM" % timeout)
        return self.proc.returncode if self.proc else None
