"""Helpers for the archive tests: start/stop tidemark (loopback only), run
`tidemark restore` / `tidemark archive ...`, and write from many clients.
Same pattern as test/crash/tmserver.py."""
import atexit
import os
import signal
import socket
import subprocess
import threading
import time

import grpc
from etcd3 import etcdrpc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def binary():
    path = os.environ.get("TIDEMARK_BIN", os.path.join(ROOT, "build", "src", "cli", "tidemark"))
    if not os.path.exists(path):
        raise AssertionError(f"tidemark binary not found at {path}: build first or set TIDEMARK_BIN")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, check=None, timeout=120):
    """Runs `tidemark args...`; returns CompletedProcess (text)."""
    p = subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout)
    if check is True:
        assert p.returncode == 0, f"tidemark {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


def restore(archive_url, data_dir, *target, check=True):
    url = ["--archive-url", archive_url] if archive_url else []  # None: from --config-file
    return run("restore", *url, "--data-dir", data_dir, *target, check=check)


class PortInUse(Exception):
    pass


_started = []  # every server process started by the tests; killed at exit


@atexit.register
def _kill_leftovers():
    for p in _started:
        if p.poll() is None:
            p.kill()


class Server:
    def __init__(self, data_dir, archive_url=None, extra=()):
        self.data_dir = data_dir
        self.port = free_port()
        self.extra = list(extra)
        if archive_url:
            self.extra = ["--archive-url", archive_url, *self.extra]
        self.proc = None
        self.log_path = data_dir.rstrip("/") + ".log"

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=20):
        # free_port() can race with other processes on the box: retry on a
        # bind failure with a new port.
        for attempt in range(5):
            try:
                return self._start(timeout)
            except PortInUse:
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

    def wait_archiving(self, timeout=30):
        """Waits until the archiver has resumed (first base shipped)."""
        deadline = time.monotonic() + timeout
        while "archiver resumed" not in self.log():
            assert time.monotonic() < deadline, "archiver did not resume; see " + self.log_path
            time.sleep(0.05)
        return self

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
        ch = grpc.insecure_channel(self.endpoint, options=[("grpc.max_receive_message_length", -1)])
        return etcdrpc.KVStub(ch), etcdrpc.MaintenanceStub(ch), ch

    def metrics(self):
        import urllib.request
        with urllib.request.urlopen(f"http://{self.endpoint}/metrics", timeout=5) as r:
            body = r.read().decode()
        out = {}
        for line in body.splitlines():
            if line.startswith("tidemark_archive_") and " " in line:
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


class Writers:
    """N client threads doing unique-key puts; records every ack with its
    revision and the monotonic time of the ack."""

    def __init__(self, endpoint, n=50, prefix="w", value_bytes=64):
        self.endpoint = endpoint
        self.n = n
        self.prefix = prefix
        self.value_bytes = value_bytes
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.acked = []  # (key, value, revision, ack_monotonic)
        self.errors = []
        self.threads = []

    def _run(self, wid):
        ch = grpc.insecure_channel(self.endpoint)
        kv = etcdrpc.KVStub(ch)
        seq = 0
        while not self.stop_ev.is_set():
            key = f"{self.prefix}/{wid:02d}/{seq:08d}".encode()
            val = os.urandom(self.value_bytes // 2).hex().encode()
            seq += 1
            try:
                resp = kv.Put(etcdrpc.PutRequest(key=key, value=val), timeout=10)
            except grpc.RpcError as e:
                with self.lock:
                    self.errors.append((e.code(), e.details()))
                if self.stop_ev.is_set():
                    break
                time.sleep(0.02)
                continue
            t = time.monotonic()
            with self.lock:
                self.acked.append((key, val, resp.header.revision, t))
        ch.close()

    def start(self):
        for i in range(self.n):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)


def read_all(endpoint, prefix=b""):
    ch = grpc.insecure_channel(endpoint, options=[("grpc.max_receive_message_length", -1)])
    kv = etcdrpc.KVStub(ch)
    end = prefix[:-1] + bytes([prefix[-1] + 1]) if prefix else b"\0"
    r = kv.Range(etcdrpc.RangeRequest(key=prefix or b"\0", range_end=end), timeout=60)
    ch.close()
    return r.header.revision, {k.key: (k.value, k.mod_revision) for k in r.kvs}
