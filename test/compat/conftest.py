"""pytest fixtures for the etcd-compatibility suite.

Target selection (environment):
  TM_TARGET     etcd | tidemark (default tidemark)
  TIDEMARK_BIN  tidemark binary (default build/src/cli/tidemark, relative to the repo root)
  ETCD_BIN / ETCDCTL_BIN   reference etcd / etcdctl (default /usr/bin/etcd, /usr/bin/etcdctl)
  TM_COMPAT_CACHE          build cache for the Go/node probes (default ~/.cache/tidemark-compat)
  TM_COMPAT_KEEP=1         keep server work dirs (data + server.log) after the run
"""

import itertools
import json
import re

import pytest

import compatlib as cl
from compatlib import Server, ServerError, etcdctl


def pytest_report_header(config):
    where = cl.TIDEMARK_BIN if cl.TARGET == "tidemark" else cl.ETCD_BIN
    return [f"compat target: TM_TARGET={cl.TARGET} ({where}); reference etcd: {cl.ETCD_BIN}; "
            f"etcdctl: {cl.ETCDCTL_BIN}; cache: {cl.CACHE_DIR}"]


def _check_target_name():
    if cl.TARGET not in ("etcd", "tidemark"):
        pytest.fail(f"TM_TARGET must be 'etcd' or 'tidemark', got {cl.TARGET!r}", pytrace=False)


def _start(kind, **kw):
    srv = Server(kind, **kw)
    try:
        srv.start()
    except ServerError as e:
        srv.cleanup()
        pytest.fail(str(e), pytrace=False)
    return srv


# ---------------------------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def server():
    """One target server shared by the whole session.  Tests using it must confine themselves
    to their own key namespace (fixture ``ns``) and must not compact."""
    _check_target_name()
    srv = _start(cl.TARGET, name="compat-shared")
    yield srv
    srv.cleanup()


@pytest.fixture(autouse=True)
def _shared_server_still_alive(request):
    yield
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        assert srv.alive(), (f"the shared {srv.kind} server died during this test; log tail:\n"
                             f"{cl.tail(srv.log_path)}")


@pytest.fixture
def fresh_server():
    """A brand-new target server (store at revision 1) for this test only."""
    _check_target_name()
    srv = _start(cl.TARGET, name="compat-fresh")
    yield srv
    srv.cleanup()


@pytest.fixture
def server_factory():
    """``server_factory(kind=None, name=..., **flags)`` -> started fresh server; all stopped at
    the end of the test."""
    _check_target_name()
    started = []

    def make(kind=None, name=None, **flags):
        srv = _start(kind or cl.TARGET, name=name or "compat-custom", flags=flags)
        started.append(srv)
        return srv

    yield make
    for s in started:
        s.cleanup()


@pytest.fixture
def ref_and_target():
    """(reference etcd, target) -- both fresh.  With TM_TARGET=etcd the
    target is a second etcd, which validates the differential tests themselves."""
    _check_target_name()
    # Started one after the other from the test's own thread: servers get PR_SET_PDEATHSIG, which
    # fires when the *thread* that spawned them exits, so never start servers from helper threads.
    servers = {"ref": Server("etcd", name="compat-diff"), "tgt": Server(cl.TARGET, name="compat-diff")}
    errors = {}
    for k, s in servers.items():
        try:
            s.start()
        except ServerError as e:
            errors[k] = e
    if errors:
        for s in servers.values():
            s.cleanup()
        pytest.fail("\n\n".join(f"{k}: {e}" for k, e in errors.items()), pytrace=False)
    yield servers["ref"], servers["tgt"]
    for s in servers.values():
        s.cleanup()


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

_ns_counter = itertools.count()


@pytest.fixture
def ns(request):
    """A key prefix unique to this test, e.g. ``/test_get_prefix-3/``."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:60]
    return f"/{name}-{next(_ns_counter)}/"


@pytest.fixture
def py(server):
    """python3-etcd3 client connected to the shared server."""
    import etcd3
    c = etcd3.client(host="127.0.0.1", port=server.port, timeout=15)
    yield c
    c.close()


@pytest.fixture
def sentinel(server, ns):
    return cl.Sentinel(server, ns)


@pytest.fixture(scope="session")
def go_probe():
    return cl.build_go_probe()


@pytest.fixture(scope="session")
def node_modules():
    return cl.install_node_probe()


def pytest_assertrepr_compare(op, left, right):
    """Readable diffs for the big normalized JSON structures of the differential tests."""
    if op == "==" and isinstance(left, (dict, list)) and isinstance(right, (dict, list)):
        lj = json.dumps(left, indent=1, sort_keys=True, default=str).splitlines()
        rj = json.dumps(right, indent=1, sort_keys=True, default=str).splitlines()
        import difflib
        diff = list(difflib.unified_diff(lj, rj, "left", "right", lineterm="", n=2))
        if diff:
            return ["normalized structures differ:"] + diff[:200]
    return None
