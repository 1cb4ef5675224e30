"""Go clientv3 3.4 leases and concurrency recipes (go/lockprobe): KeepAlive holding a 2 s lease,
expiry, concurrency.Mutex hand-over on Unlock and on lease expiry, concurrency.Election
campaign / proclaim / observe / resign and hand-over on lease expiry."""

import subprocess

import pytest

import compatlib as cl

pytestmark = pytest.mark.golang


@pytest.fixture(scope="session")
def lock_probe():
    return cl.build_go_probe("lockprobe")


def test_go_clientv3_leases_mutex_election(lock_probe, server, ns):
    proc = subprocess.run([lock_probe, "-endpoint", server.endpoint, "-prefix", ns],
                          capture_output=True, text=True, timeout=150, env=cl.clean_env())
    out = proc.stdout
    fail = [l for l in out.splitlines() if l.startswith("FAIL ")]
    assert proc.returncode == 0 and out.rstrip().splitlines()[-1].startswith("OK "), (
        f"Go lock probe failed: {fail[0] if fail else '(no FAIL line)'}\n"
        f"rc={proc.returncode}\nstdout:\n{out[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
