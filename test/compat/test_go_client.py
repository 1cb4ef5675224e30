"""Go clientv3 3.4 (go.etcd.io/etcd/clientv3, built offline from Debian's golang-etcd-server-dev)
against a fresh target: Get/Put/Delete/Txn/Compact/Status/MemberList/Lease/Watch/HashKV/Mutex,
with typed-error mapping (rpctypes.ErrXxx are matched by exact message text)."""

import subprocess

import pytest

import compatlib as cl

pytestmark = pytest.mark.golang


def test_go_clientv3_probe(go_probe, fresh_server):
    proc = subprocess.run([go_probe, "-endpoint", fresh_server.endpoint, "-name", fresh_server.name],
                          capture_output=True, text=True, timeout=120, env=cl.clean_env())
    out = proc.stdout
    fail = [l for l in out.splitlines() if l.startswith("FAIL ")]
    assert proc.returncode == 0 and out.rstrip().splitlines()[-1].startswith("OK "), (
        f"Go clientv3 probe failed: {fail[0] if fail else '(no FAIL line)'}\n"
        f"rc={proc.returncode}\nstdout:\n{out[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    # the server survived and the probe's data is visible to etcdctl
    assert cl.etcdctl(fresh_server, "get", "a", "--print-value-only").stdout == "11\n"
