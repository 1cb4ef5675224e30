"""Shared helpers for the Tidemark etcd-compatibility suite (test/compat).

Everything here is loopback-only.  Servers are started on free 127.0.0.1 ports with a fresh
temporary data directory and are always stopped (SIGTERM, then SIGKILL after a bound); on Linux
they also get PR_SET_PDEATHSIG so they die with the test process if pytest itself is killed.

No fixed sleeps: every wait is a poll with a deadline (see ``wait_until``).
"""

import base64
import ctypes
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

TARGET = os.environ.get("TM_TARGET", "tidemark").strip().lower()
ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")
ETCDCTL_BIN = os.environ.get("ETCDCTL_BIN", "/usr/bin/etcdctl")
_tm_bin = os.environ.get("TIDEMARK_BIN", "build/src/cli/tidemark")
if os.path.isabs(_tm_bin):
    TIDEMARK_BIN = _tm_bin
elif "TIDEMARK_BIN" in os.environ and os.path.exists(_tm_bin):
    TIDEMARK_BIN = os.path.abspath(_tm_bin)  # relative to the current directory
else:
    TIDEMARK_BIN = str(REPO_ROOT / _tm_bin)  # relative to the repository root
CACHE_DIR = Path(os.environ.get("TM_COMPAT_CACHE")
                 or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tidemark-compat")
KEEP_DATA = os.environ.get("TM_COMPAT_KEEP", "") not in ("", "0")

START_TIMEOUT = float(os.environ.get("TM_COMPAT_START_TIMEOUT", "30"))
STOP_TIMEOUT = 10.0

# Everything we talk to is on loopback: make sure no proxy from the environment is used by
# grpc-go (etcdctl, Go probe), grpc core (python), grpc-js (node) or urllib.
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "grpc_proxy",
               "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GRPC_PROXY")
for _v in _PROXY_VARS:
    os.environ.pop(_v, None)
os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost"


def clean_env(**extra):
    """Environment for client subprocesses: no proxies, no inherited ETCDCTL_* settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ETCDCTL_") and k not in _PROXY_VARS}
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update({k: str(v) for k, v in extra.items()})
    return env


# ------------------------------------------------------------------------------------------
# small utilities
# ------------------------------------------------------------------------------------------

class WaitTimeout(AssertionError):
    pass


def wait_until(pred, timeout, desc, interval=0.05):
    """Poll ``pred()`` until it returns a truthy value; return that value.

    Exceptions raised by ``pred`` count as "not yet" (the last one is reported on timeout)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - polled condition
            last_exc = e
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {desc}"
                              + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


_port_lock = threading.Lock()
_ports_handed_out = set()


def free_port():
    """A currently free 127.0.0.1 TCP port, never the same one twice in this process."""
    with _port_lock:
        for _ in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            finally:
                s.close()
            if port not in _ports_handed_out:
                _ports_handed_out.add(port)
                return port
    raise RuntimeError("could not find a free port")


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def unb64(s):
    return base64.b64decode(s)


def _pdeathsig():
    """preexec_fn: kill the child if the test process dies (Linux only).

    NB: the signal is sent when the spawning *thread* exits, so servers must be started from the
    main (test) thread, never from short-lived helper threads."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        pass


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
        lines = data.decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return f"<no log: {e}>"


# ------------------------------------------------------------------------------------------
# servers
# ------------------------------------------------------------------------------------------

class ServerError(AssertionError):
    pass


class Server:
    """One single-member server (real etcd or tidemark) on loopback.

    ``flags`` maps etcd-style flag names (without dashes, ``_`` or ``-``) to values; they are
    passed identically to both implementations (e.g. ``max_txn_ops=4``)."""

    def __init__(self, kind, name=None, flags=None, workdir=None):
        if kind not in ("etcd", "tidemark"):
            raise ValueError(f"unknown server kind {kind!r} (TM_TARGET must be etcd or tidemark)")
        self.kind = kind
        self.name = name or f"compat-{kind}"
        self.flags = dict(flags or {})
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"tm-compat-{kind}-"))
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "server.log"
        self.port = None
        self.peer_port = None
        self.proc = None
        self._log = None
        self.killed_after_timeout = False

    # -- addresses -------------------------------------------------------------------------
    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def peer_url(self):
        return f"http://127.0.0.1:{self.peer_port}" if self.peer_port else None

    def __repr__(self):
        return f"<{self.kind} server {self.name} at {self.endpoint if self.port else '-'}>"

    # -- lifecycle -------------------------------------------------------------------------
    def binary(self):
        return ETCD_BIN if self.kind == "etcd" else TIDEMARK_BIN

    def check_binary(self):
        b = self.binary()
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            if self.kind == "tidemark":
                raise ServerError(
                    f"tidemark binary not found or not executable: {b}\n"
                    f"Build it first (cmake --build build) or point TIDEMARK_BIN at it; "
                    f"use TM_TARGET=etcd to run this suite against the real etcd.")
            raise ServerError(f"etcd binary not found or not executable: {b} "
                              f"(install Debian package etcd-server or set ETCD_BIN)")

    def argv(self):
        flag_args = []
        for k, v in self.flags.items():
            flag = "--" + k.replace("_", "-")
            flag_args += [flag] if v is True else [flag, str(v)]
        common = ["--name", self.name, "--data-dir", str(self.data_dir),
                  "--listen-client-urls", self.url, "--advertise-client-urls", self.url]
        if self.kind == "tidemark":
            return [self.binary(), "serve"] + common + ["--log-level", "info"] + flag_args
        return ([self.binary()] + common +
                ["--listen-peer-urls", self.peer_url,
                 "--initial-advertise-peer-urls", self.peer_url,
                 "--initial-cluster", f"{self.name}={self.peer_url}",
                 "--initial-cluster-state", "new",
                 "--logger", "zap", "--log-outputs", "stderr", "--log-level", "info"]
                + flag_args)

    def start(self, timeout=START_TIMEOUT):
        """Start (or restart, keeping ports and data dir) and wait until it serves KV reads."""
        self.check_binary()
        fresh_ports = self.port is None
        attempts = 3 if fresh_ports else 1
        for attempt in range(attempts):
            if fresh_ports:
                self.port = free_port()
                if self.kind == "etcd":
                    self.peer_port = free_port()
            self._spawn()
            try:
                self.wait_ready(timeout)
                return self
            except ServerError:
                log = tail(self.log_path, 400)
                self.stop()
                if fresh_ports and attempt + 1 < attempts and "address already in use" in log.lower():
                    continue
                raise
        raise ServerError("unreachable")

    def _spawn(self):
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n==== start {' '.join(self.argv())}\n".encode())
        self._log.flush()
        self.killed_after_timeout = False
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=str(self.workdir),
                                     env=clean_env(), preexec_fn=_pdeathsig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=START_TIMEOUT):
        """Ready = the process is alive and a linearizable gRPC Range (like `etcdctl endpoint
        health`) answers."""
        import etcd3  # python3-etcd3 (Debian), imported lazily

        def ready():
            if not self.alive():
                raise ServerError(
                    f"{self.kind} exited early with code {self.proc.returncode}; "
                    f"argv: {' '.join(self.argv())}\nlog tail ({self.log_path}):\n"
                    f"{tail(self.log_path)}")
            c = etcd3.client(host="127.0.0.1", port=self.port, timeout=1)
            try:
                c.get("health")
                return True
            finally:
                c.close()

        deadline = time.monotonic() + timeout
        interval = 0.05
        last = None
        while True:
            try:
                if ready():
                    return
            except ServerError:
                raise
            except Exception as e:  # noqa: BLE001 - not ready yet
                last = e
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"{self.kind} not ready after {timeout}s on {self.endpoint} "
                    f"(last error: {last!r})\nlog tail ({self.log_path}):\n{tail(self.log_path)}")
            time.sleep(interval)
            interval = min(interval * 1.5, 0.3)

    def stop(self, sig=signal.SIGTERM):
        """Stop: ``sig`` (default SIGTERM), then SIGKILL after STOP_TIMEOUT.  Returns the exit
        code (negative = killed by a signal) or None if it was not running."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    self.proc.send_signal(sig)
                    rc = self.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    rc = self.proc.wait(timeout=STOP_TIMEOUT)
                    self.killed_after_timeout = True
            else:
                rc = self.proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return rc

    def restart(self, timeout=START_TIMEOUT):
        self.stop()
        self.proc = None
        return self.start(timeout)

    def cleanup(self):
        self.stop()
        if not KEEP_DATA:
            shutil.rmtree(self.workdir, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# etcdctl
# ------------------------------------------------------------------------------------------

class CtlResult:
    def __init__(self, argv, proc):
        self.argv = argv
        self.rc = proc.returncode
        self.stdout = proc.stdout.decode("utf-8", "replace") if isinstance(proc.stdout, bytes) else proc.stdout
        self.stderr = proc.stderr.decode("utf-8", "replace") if isinstance(proc.stderr, bytes) else proc.stderr

    @property
    def error(self):
        """The ``Error: ...`` line etcdctl prints on failure (without the prefix), or None."""
        for line in reversed(self.stderr.splitlines()):
            if line.startswith("Error: "):
                return line[len("Error: "):]
        return None

    def json(self):
        return json.loads(self.stdout)

    def __repr__(self):
        return (f"etcdctl {' '.join(self.argv)} -> rc={self.rc}\n--- stdout ---\n{self.stdout}"
                f"\n--- stderr ---\n{self.stderr[-3000:]}")


def etcdctl(server, *args, input=None, timeout=60, check=True, endpoints=None):
    """Run etcdctl (v3 API) against ``server``.  ``check`` asserts exit code 0."""
    args = [str(a) for a in args]
    eps = endpoints or server.endpoint
    argv = [ETCDCTL_BIN, f"--endpoints={eps}", "--dial-timeout=3s", "--command-timeout=15s"] + args
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.run(argv, input=input if input is not None else b"", capture_output=True,
                          timeout=timeout, env=clean_env(ETCDCTL_API=3))
    res = CtlResult(args, proc)
    if check:
        assert res.rc == 0, f"etcdctl failed against {server}:\n{res!r}"
    return res


def etcdctl_err(server, *args, input=None, timeout=60):
    """Run etcdctl expecting failure; return the ``Error: ...`` text."""
    res = etcdctl(server, *args, input=input, timeout=timeout, check=False)
    assert res.rc != 0, f"expected etcdctl to fail against {server}:\n{res!r}"
    assert res.error is not None, f"no 'Error:' line from etcdctl:\n{res!r}"
    return res.error


def txn_input(compares=(), success=(), failure=()):
    """stdin for non-interactive ``etcdctl txn``: three blank-line-terminated sections."""
    return "".join(line + "\n" for line in compares) + "\n" + \
        "".join(line + "\n" for line in success) + "\n" + \
        "".join(line + "\n" for line in failure) + "\n"


def header_rev(obj):
    return int(obj["header"]["revision"])


class Sentinel:
    """Data written before a bad-input test and verified afterwards: the server must still
    serve reads and writes and the earlier data must be unchanged."""

    def __init__(self, server, prefix):
        self.server = server
        self.prefix = prefix + "sentinel/"
        for i in range(3):
            etcdctl(server, "put", f"{self.prefix}k{i}", f"value-{i}")
        etcdctl(server, "put", f"{self.prefix}k1", "value-1b")
        self.before = self._snapshot()
        assert len(self.before) == 3

    def _snapshot(self):
        res = etcdctl(self.server, "get", self.prefix, "--prefix", "-w", "json").json()
        return [(unb64(kv["key"]), unb64(kv.get("value", "")), kv["create_revision"],
                 kv["mod_revision"], kv["version"]) for kv in res.get("kvs", [])]

    def check(self):
        assert self.server.alive(), f"{self.server} died; log:\n{tail(self.server.log_path)}"
        res = etcdctl(self.server, "endpoint", "health")
        assert "is healthy" in res.stdout + res.stderr, res
        assert self._snapshot() == self.before, "data written before the bad input changed"
        etcdctl(self.server, "put", self.prefix + "after", "still-writable")
        assert etcdctl(self.server, "get", self.prefix + "after", "--print-value-only").stdout \
            == "still-writable\n"


# ------------------------------------------------------------------------------------------
# HTTP (gateway, /health, /version, /metrics) -- http.client, never a proxy
# ------------------------------------------------------------------------------------------

def http_request(server, method, path, body=None, headers=None, timeout=15):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.getheaders()), data
    finally:
        conn.close()


def gw(server, path, body):
    """POST a JSON body to the gRPC gateway; returns (http status, parsed JSON body)."""
    status, _, data = http_request(server, "POST", path, body)
    try:
        parsed = json.loads(data) if data.strip() else None
    except ValueError:
        raise AssertionError(f"gateway {path} returned non-JSON ({status}): {data[:500]!r}")
    return status, parsed


def gw_ok(server, path, body):
    status, obj = gw(server, path, body)
    assert status == 200, f"gateway {path} {body} -> HTTP {status}: {obj}"
    return obj


# ------------------------------------------------------------------------------------------
# normalisation for differential comparisons
# ------------------------------------------------------------------------------------------

_IDENTITY_HEADER_FIELDS = ("cluster_id", "member_id", "raft_term")


def normalize(obj, lease_fields=("lease", "ID"), drop=()):
    """Return a deep copy with things that legitimately differ between two servers replaced:

    * every ``header``: cluster_id/member_id/raft_term dropped (revision kept!);
    * non-zero lease ids (``lease``, ``ID`` fields) -> "<lease>";
    * keys listed in ``drop`` removed everywhere.
    """
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in drop:
                continue
            if k == "header" and isinstance(v, dict):
                out[k] = {hk: hv for hk, hv in v.items() if hk not in _IDENTITY_HEADER_FIELDS}
            elif k in lease_fields and not isinstance(v, (dict, list)) and v not in (0, "0", None):
                out[k] = "<lease>"
            else:
                out[k] = normalize(v, lease_fields, drop)
        return out
    if isinstance(obj, list):
        return [normalize(v, lease_fields, drop) for v in obj]
    return obj


_HEX16 = re.compile(r"\b[0-9a-f]{16}\b")


def normalize_text(s, server=None):
    """Normalise etcdctl text output: endpoint ports, 16-hex-digit ids, durations."""
    if server is not None:
        s = s.replace(server.endpoint, "<endpoint>")
        if server.peer_url:
            s = s.replace(server.peer_url, "<peer>")
    s = _HEX16.sub("<id>", s)
    s = re.sub(r"took = [0-9.]+[a-zµ]+", "took = <d>", s)
    return s


# ------------------------------------------------------------------------------------------
# build caches for the Go and node probes (outside the repository)
# ------------------------------------------------------------------------------------------

def _digest(*paths, extra=""):
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


def _locked(lock_path):
    import fcntl
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    f = open(lock_path, "w")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def build_go_probe(name="compatprobe"):
    """Build test/compat/go/<name> offline in GOPATH mode; cached by source hash."""
    src_dir = HERE / "go" / name
    sources = sorted(src_dir.glob("*.go"))
    go = shutil.which("go") or "/usr/bin/go"
    gover = subprocess.run([go, "version"], capture_output=True, text=True, timeout=60).stdout.strip()
    key = _digest(*sources, extra=gover)
    out_dir = CACHE_DIR / "go"
    binary = out_dir / f"{name}-{key}"
    lock = _locked(out_dir / ".lock")
    try:
        if binary.exists():
            return str(binary)
        gopath = out_dir / "gopath"
        pkg_dir = gopath / "src" / "tidemark.test" / name
        shutil.rmtree(pkg_dir, ignore_errors=True)
        pkg_dir.mkdir(parents=True)
        for s in sources:
            shutil.copy(s, pkg_dir / s.name)
        env = clean_env(GO111MODULE="off", GOPROXY="off", GOFLAGS="", GOSUMDB="off",
                        GOPATH=f"{gopath}:/usr/share/gocode", GOCACHE=str(out_dir / "gocache"),
                        CGO_ENABLED="0")
        tmp = binary.with_suffix(".tmp")
        proc = subprocess.run([go, "build", "-o", str(tmp), "tidemark.test/" + name],
                              cwd=str(pkg_dir), env=env, capture_output=True, text=True,
                              timeout=600)
        if proc.returncode != 0:
            raise AssertionError(
                "building the Go clientv3 probe failed (needs Debian golang-go and "
                f"golang-etcd-server-dev):\n{proc.stdout}\n{proc.stderr}")
        tmp.rename(binary)
        return str(binary)
    finally:
        lock.close()


def install_node_probe():
    """`npm ci` test/compat/node into a cache dir keyed by the lock file; returns node_modules."""
    node_dir = HERE / "node"
    key = _digest(node_dir / "package.json", node_dir / "package-lock.json")
    out_dir = CACHE_DIR / "node" / key
    modules = out_dir / "node_modules"
    lock = _locked(CACHE_DIR / "node" / ".lock")
    try:
        if (modules / "etcd3" / "package.json").exists():
            return str(modules)
        npm = shutil.which("npm")
        if npm is None:
            raise AssertionError("npm not found (install Debian nodejs/npm or Node >= 18)")
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        for f in ("package.json", "package-lock.json"):
            shutil.copy(node_dir / f, out_dir / f)
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts",
                               "--prefer-offline"], cwd=str(out_dir), env=clean_env(),
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not (modules / "etcd3").exists():
            raise AssertionError(
                "npm ci for test/compat/node failed (needs network access to the npm registry "
                "once, or run scripts/compat-deps.sh beforehand):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return str(modules)
    finally:
        lock.close()
