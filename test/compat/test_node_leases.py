"""npm etcd3 1.1.2 leases, locks and elections against the target (node/leases.js): a keep-alive
stream holding a 2 s lease, 'lost' after a revoke elsewhere, lock hand-over through lease
expiry, and Election campaign / observe / resign hand-over."""

import json
import shutil
import subprocess

import pytest

import compatlib as cl

pytestmark = pytest.mark.node


def test_npm_etcd3_leases_lock_election(node_modules, server, ns):
    node = shutil.which("node")
    assert node, "node not found (Node >= 18 is required for npm etcd3 1.1.2)"
    proc = subprocess.run([node, str(cl.HERE / "node" / "leases.js"), server.endpoint, ns],
                          capture_output=True, text=True, timeout=150,
                          env=cl.clean_env(NODE_PATH=node_modules))
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        result = json.loads(last)
    except ValueError:
        result = None
    detail = f"rc={proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    assert result is not None, f"node probe printed no JSON result\n{detail}"
    assert result["ok"] is True and proc.returncode == 0, \
        f"npm etcd3 check '{result.get('failed')}' failed: {result.get('error')}\n{detail}"
    assert len(result["checks"]) == 4, result
