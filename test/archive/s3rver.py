"""Starts/stops s3rver (npm s3rver@3.7.1, installed by `npm ci` in
test/archive/node) on 127.0.0.1 for the S3 archive tests. Loopback only.

s3rver does not verify SigV4 signatures and ignores If-None-Match on PUT, so
the tests put SigV4Proxy (sigv4_proxy.py) in front of it: the proxy checks
every signature from the SigV4 specification and enforces If-None-Match: *
the way S3 does, and s3rver itself provides the object store round trip
(PUT/GET/DELETE/ListObjectsV2/multipart)."""
import os
import signal
import subprocess
import time

from tmarchive import _started, free_port

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
BIN = os.path.join(NODE_DIR, "node_modules", ".bin", "s3rver")
BUCKET = "archive"
KEY = "S3RVER"  # s3rver's default access key and secret


def available():
    return os.path.exists(BIN)


def install_hint():
    return f"s3rver not installed: run `npm ci` in {NODE_DIR}"


class S3rver:
    def __init__(self, data_dir, port=None):
        self.data_dir = str(data_dir)
        self.port = port or free_port()
        self.proc = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=20):
        # The first start may race another process for the port: retry on a
        # new one. Restarts (outage tests) keep the port the server knows.
        for attempt in range(5):
            try:
                return self._start(timeout)
            except AssertionError:
                if self.started_once or attempt == 4:
                    raise
                self.port = free_port()

    started_once = False

    def _start(self, timeout):
        os.makedirs(self.data_dir, exist_ok=True)
        self.log = open(self.data_dir.rstrip("/") + ".s3rver.log", "ab")
        self.proc = subprocess.Popen(
            [BIN, "-d", self.data_dir, "-a", "127.0.0.1", "-p", str(self.port),
             "--configure-bucket", BUCKET],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        _started.append(self.proc)
        deadline = time.monotonic() + timeout
        import socket
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"s3rver exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    self.started_once = True
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("s3rver did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc:
            self.log.close()
        self.proc = None

    def drop_partial_objects(self):
        """Removes objects whose upload was cut off by a killed client.

        Real S3 never exposes a partial PUT; s3rver writes the body first and
        the metadata after, so a client killed mid-upload leaves a body with
        no metadata, and every later LIST of that prefix answers HTTP 500.
        Call after SIGKILLing a writer to restore S3's all-or-nothing PUT."""
        removed = []
        for root, _, files in os.walk(os.path.join(self.data_dir, BUCKET)):
            for f in files:
                if f.endswith("._S3rver_object"):
                    meta = f[: -len("._S3rver_object")] + "._S3rver_metadata.json"
                    if meta not in files:
                        os.remove(os.path.join(root, f))
                        removed.append(f)
        return removed

    def object_path(self, key):
        return os.path.join(self.data_dir, BUCKET, key) + "._S3rver_object"


class SigV4Proxy:
    """sigv4_proxy.py in front of an S3rver: verifies every signature."""

    def __init__(self, upstream, secret=KEY):
        self.upstream = upstream
        self.secret = secret
        self.port = free_port()
        self.proc = None
        self.log_path = upstream.data_dir.rstrip("/") + ".proxy.log"

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        import socket
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(os.path.dirname(os.path.abspath(__file__)), "sigv4_proxy.py"),
             str(self.port), str(self.upstream.port), self.secret],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        _started.append(self.proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("sigv4 proxy did not start")

    def rejected(self):
        with open(self.log_path, errors="replace") as f:
            return [l for l in f if l.startswith("REJECTED")]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
            self.log.close()
