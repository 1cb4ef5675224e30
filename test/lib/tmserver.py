"""Start/stop a tidemark server for process-level tests (loopback only).

Every server started here is killed when the test process exits (atexit), and a start that
loses its free port to another process on the box is retried on a new port."""
import atexit
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


class PortInUse(Exception):
    pass


_started = []  # every server process started by the tests; killed at exit


@atexit.register
def _kill_leftovers():
    for p in _started:
        if p.poll() is None:
            p.kill()


class Server:
    def __init__(self, data_dir, port=None, extra=()):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.fixed_port = port is not None
        self.extra = list(extra)
        self.proc = None
        self.log_path = data_dir.rstrip("/") + ".log"

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=20):
        # free_port() can race with other processes on the box: retry on a
        # bind failure with a new port (unless the caller chose the port).
        for _ in range(5):
            try:
                return self._start(timeout)
            except PortInUse:
                if self.fixed_port:
                    raise AssertionError(f"port {self.port} is in use; see {self.log_path}")
                self.port = free_port()
        raise AssertionError("could not bind a free port in 5 attempts")

    def _start(self, timeout):
        url = f"http://{self.endpoint}"
        start_offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [binary(), "serve", "--data-dir", self.data_dir, "--listen-client-urls", url,
             "--advertise-client-urls", url, *self.extra],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        _started.append(self.proc)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                with open(self.log_path, errors="replace") as f:
                    f.seek(start_offset)
                    if "Address already in use" in f.read():
                        raise PortInUse()
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

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError("tidemark did not stop within %ss of SIGTERM" % timeout)
        return self.proc.returncode if self.proc else None

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def kv(self):
        """(KV stub, Maintenance stub, channel); the caller closes the channel."""
        ch = grpc.insecure_channel(self.endpoint, options=[("grpc.max_receive_message_length", -1)])
        return etcdrpc.KVStub(ch), etcdrpc.MaintenanceStub(ch), ch

    def metrics(self, prefix=""):
        """Prometheus samples whose name starts with `prefix`, as {sample: float}."""
        import urllib.request
        with urllib.request.urlopen(f"http://{self.endpoint}/metrics", timeout=5) as r:
            body = r.read().decode()
        out = {}
        for line in body.splitlines():
            if line.startswith(prefix) and not line.startswith("#") and " " in line:
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out
