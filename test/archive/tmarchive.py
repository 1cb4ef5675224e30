"""Helpers for the archive tests: start/stop tidemark (loopback only), run
`tidemark restore` / `tidemark archive ...`, and write from many clients.
The server class itself is test/lib/tmserver.py's."""
import os
import subprocess
import threading
import time

import grpc
from etcd3 import etcdrpc

import tmserver  # test/lib: binary lookup, free ports, start/stop, leftovers killed at exit
from tmserver import PortInUse, _started, binary, free_port  # noqa: F401  (re-exported)



def run(*args, check=None, timeout=120):
    """Runs `tidemark args...`; returns CompletedProcess (text)."""
    p = subprocess.run([binary(), *args], capture_output=True, text=True, timeout=timeout)
    if check is True:
        assert p.returncode == 0, f"tidemark {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


def restore(archive_url, data_dir, *target, check=True):
    url = ["--archive-url", archive_url] if archive_url else []  # None: from --config-file
    return run("restore", *url, "--data-dir", data_dir, *target, check=check)


class Server(tmserver.Server):
    """tmserver.Server with an optional --archive-url and archive helpers."""

    def __init__(self, data_dir, archive_url=None, extra=()):
        extra = list(extra)
        if archive_url:
            extra = ["--archive-url", archive_url, *extra]
        super().__init__(data_dir, extra=extra)

    def wait_archiving(self, timeout=30):
        """Waits until the archiver has resumed (first base shipped)."""
        deadline = time.monotonic() + timeout
        while "archiver resumed" not in self.log():
            assert time.monotonic() < deadline, "archiver did not resume; see " + self.log_path
            time.sleep(0.05)
        return self

    def metrics(self, prefix="tidemark_archive_"):
        return super().metrics(prefix)


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


def restored_contents(data_dir, prefix=b""):
    """Starts tidemark on a restored data dir, reads every key under `prefix`, stops it
    (asserting a clean exit); returns read_all's (revision, {key: (value, mod_revision)})."""
    s = Server(data_dir).start()
    try:
        return read_all(s.endpoint, prefix)
    finally:
        assert s.stop() == 0


def missing(acked, have):
    """The acknowledged writes (key, value, revision, ...) that `have` (read_all's dict) does
    not hold with exactly that value at exactly that revision."""
    return [a for a in acked if have.get(a[0]) != (a[1], a[2])]
