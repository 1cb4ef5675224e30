"""npm etcd3 1.1.2 (grpc-js) against the target: runs node/compat.js, which exits non-zero and
names the failing check on any mismatch."""

import json
import shutil
import subprocess

import pytest

import compatlib as cl

pytestmark = pytest.mark.node


def run_node(node_modules, server, prefix, timeout=120):
    node = shutil.which("node")
    assert node, "node not found (Node >= 18 is required for npm etcd3 1.1.2)"
    proc = subprocess.run([node, str(cl.HERE / "node" / "compat.js"), server.endpoint, prefix],
                          capture_output=True, text=True, timeout=timeout,
                          env=cl.clean_env(NODE_PATH=node_modules))
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        result = json.loads(last)
    except ValueError:
        result = None
    return proc, result


def test_npm_etcd3_client(node_modules, server, ns):
    proc, result = run_node(node_modules, server, ns)
    detail = f"rc={proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    assert result is not None, f"node probe printed no JSON result\n{detail}"
    assert result["ok"] is True and proc.returncode == 0, \
        f"npm etcd3 check '{result.get('failed')}' failed: {result.get('error')}\n{detail}"
    assert len(result["checks"]) == 12, result
    # the server is still fine and the data written by node is visible to etcdctl
    assert cl.etcdctl(server, "get", ns + "str", "--print-value-only").stdout == "hello\n"
