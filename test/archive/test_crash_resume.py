"""SIGKILL the archiving server repeatedly under load and restart it on the
same data dir: each restart resumes the chain from the archive and ships the
backlog from the local WAL (small WAL segments, so the release gate matters).
At the end (clean SIGTERM) the archive verifies and a restore holds every
acknowledged write."""
import os
import random
import time

from tmarchive import Server, Writers, missing, restore, restored_contents, run

KILLS = int(os.environ.get("TM_ARCHIVE_KILLS", "5"))


def test_kill9_and_resume(tmp_path):
    rng = random.Random(int(os.environ.get("TM_TEST_SEED", "7")))
    arch = f"file://{tmp_path}/archive"
    data = str(tmp_path / "data")
    extra = ["--archive-interval", "300ms", "--wal-segment-bytes", str(128 << 10)]
    acked = []
    srv = Server(data, arch, extra)
    for k in range(KILLS):
        srv.start()
        w = Writers(srv.endpoint, n=20, prefix=f"w{k}").start()
        time.sleep(rng.uniform(0.5, 2.0))
        srv.kill()
        w.stop()
        acked += w.acked
        srv = Server(data, arch, extra)
    srv.start()
    assert srv.stop() == 0, srv.log()[-2000:]
    v = run("archive", "verify", "--archive-url", arch, "--deep", check=True)
    assert "verify OK" in v.stdout
    restore(arch, str(tmp_path / "restored"), "--latest")
    _, have = restored_contents(str(tmp_path / "restored"))
    lost = missing(acked, have)
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged writes lost"
    # One timeline, one base: every restart continued the same chain.
    assert len(list((tmp_path / "archive" / "timelines").iterdir())) == 1
