"""The archive on an S3-compatible target: s3rver on 127.0.0.1, started and
stopped by these tests, behind a SigV4-verifying proxy (sigv4_proxy.py) so
that every request's signature is checked (s3rver does not). Disaster drill
(async and --archive-sync), the target stopped under load, multipart upload
of a large base, faults, and a wrong secret."""
import os
import shutil
import time

import pytest
from etcd3 import etcdrpc

import s3rver
from tmarchive import Server, Writers, missing, read_all, restore, restored_contents, run

if not s3rver.available():
    # A missing S3 server is a broken test setup, never a reason to skip.
    raise RuntimeError(s3rver.install_hint())


class Target:
    """s3rver + verifying proxy; `endpoint` is the proxy."""

    def __init__(self, tmp_path):
        self.s3 = s3rver.S3rver(tmp_path / "s3").start()
        self.proxy = s3rver.SigV4Proxy(self.s3).start()
        self._port = self.proxy.port

    @property
    def endpoint(self):
        return self.proxy.endpoint

    def stop(self):  # the target goes down (the proxy then fails to connect: 502-like)
        self.proxy.stop()
        self.s3.stop()

    def start(self):
        self.s3.start()  # same port and data dir
        self.proxy = s3rver.SigV4Proxy(self.s3)
        self.proxy.port = self._port
        self.proxy.start()
        return self


@pytest.fixture
def s3(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3rver.KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3rver.KEY)
    t = Target(tmp_path)
    yield t
    rejected = t.proxy.rejected()
    t.stop()
    assert not rejected, f"requests with bad SigV4 signatures: {rejected[:3]}"


def url(prefix="tm"):
    return f"s3://{s3rver.BUCKET}/{prefix}"


def s3args(s3):
    return ["--archive-s3-endpoint", s3.endpoint]


def tm(s3, *args, check=True):
    return run(*args, "--archive-url", url(), *s3args(s3), check=check)


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_s3_drill(tmp_path, s3, mode):
    data = str(tmp_path / "data")
    extra = s3args(s3) + (["--archive-sync"] if mode == "sync" else [])
    srv = Server(data, url(), extra).start()
    w = Writers(srv.endpoint, n=50).start()
    time.sleep(5)
    srv.kill()
    kill_t = time.monotonic()
    w.stop()
    s3.s3.drop_partial_objects()  # s3rver quirk: see drop_partial_objects
    shutil.rmtree(data)
    t0 = time.monotonic()
    out = restore(url(), data, "--latest", *s3args(s3)).stdout
    took = time.monotonic() - t0
    print(out)
    r = Server(data, url(), s3args(s3)).start()
    try:
        _, have = read_all(r.endpoint, b"w/")
        need = [a for a in w.acked if mode == "sync" or a[3] < kill_t - 1.0]
        lost = missing(need, have)
        assert not lost, f"{len(lost)} of {len(need)} required writes lost"
        print(f"mode={mode} acked={len(w.acked)} required={len(need)} restore_s={took:.2f}")
    finally:
        assert r.stop() == 0
    v = tm(s3, "archive", "verify", "--deep")
    assert "verify OK" in v.stdout


def test_s3_outage_under_load(tmp_path, s3):
    """s3rver stopped for 60 s (TM_OUTAGE_SECONDS) under load: writes go on, the lag is reported
    and grows, nothing is recorded as a gap once it is back, and the lag falls back under 1 s
    while the writers keep writing; every acknowledged write is in the archive."""
    outage = float(os.environ.get("TM_OUTAGE_SECONDS", "60"))
    data = str(tmp_path / "data")
    srv = Server(data, url(), s3args(s3) + ["--archive-interval", "200ms"]).start()
    w = Writers(srv.endpoint, n=10).start()
    time.sleep(1)
    s3.stop()  # target down under load
    down_at = time.monotonic()
    lags = []
    while time.monotonic() - down_at < outage:
        lags.append(srv.metrics()["tidemark_archive_lag_seconds"])
        time.sleep(1)
    m = srv.metrics()
    assert m["tidemark_archive_lag_seconds"] >= outage - 5, m
    assert lags[-1] > lags[0] + outage / 2, f"the reported lag must grow during the outage: {lags}"
    assert m["tidemark_archive_spool_bytes"] > 0 and m['tidemark_archive_requests_total{result="error"}'] > 0, m
    n_during = len(w.acked)
    s3.start()  # same port and data dir
    up_at = time.monotonic()
    # Still under load: the lag comes back under 1 s.
    while srv.metrics()["tidemark_archive_lag_seconds"] >= 1.0:
        assert time.monotonic() - up_at < 90, "archive lag did not fall under 1 s after the outage"
        time.sleep(0.2)
    print(f"lag back under 1 s {time.monotonic() - up_at:.1f} s after the target returned")
    time.sleep(1)
    w.stop()
    assert len(w.acked) > n_during > 100, "writes must go on during the outage"
    deadline = time.monotonic() + 60
    while srv.metrics()["tidemark_archive_lag_revisions"] > 0:
        assert time.monotonic() < deadline, "archiver did not catch up"
        time.sleep(0.2)
    assert srv.metrics()["tidemark_archive_gaps_total"] == 0
    assert srv.stop() == 0
    v = tm(s3, "archive", "verify", "--deep")
    assert "GAP" not in v.stdout, v.stdout
    d2 = str(tmp_path / "restored")
    restore(url(), d2, "--latest", *s3args(s3))
    _, have = restored_contents(d2, b"w/")
    lost = missing(w.acked, have)
    assert not lost, f"{len(lost)} acknowledged writes lost"


def test_s3_multipart_base_and_faults(tmp_path, s3):
    data = str(tmp_path / "data")
    # ~24 MiB of incompressible values, then a base: > 16 MiB -> multipart upload.
    srv = Server(data, url(), s3args(s3) + ["--archive-base-every-entries", "200",
                                            "--archive-interval", "200ms"]).start()
    # The first base is taken when the archiver resumes (in the background):
    # wait for it, so the periodic base is due after the 240 puts below.
    srv.wait_archiving()
    kv, _, ch = srv.kv()
    for i in range(240):
        kv.Put(etcdrpc.PutRequest(key=b"big%04d" % i, value=os.urandom(100 << 10)), timeout=30)
    ch.close()
    deadline = time.monotonic() + 120
    while "base snapshot shipped" not in srv.log().split("archiver resumed", 1)[-1]:
        if time.monotonic() > deadline:
            problems = [l for l in srv.log().splitlines() if '"info"' not in l]
            raise AssertionError(f"no periodic base; warnings/errors: {problems[-10:]}; "
                                 f"metrics: {srv.metrics()}")
        time.sleep(0.2)
    assert srv.stop() == 0
    st = tm(s3, "archive", "status").stdout
    assert "bases:            2" in st, st
    out = restore(url(), str(tmp_path / "r"), "--latest", *s3args(s3)).stdout
    assert "revision:      241\n" in out and "00000000000000000000-" not in out.split("base:")[1].split("\n")[0], out
    s2 = Server(str(tmp_path / "r")).start()
    try:
        _, have = read_all(s2.endpoint, b"big")
        assert len(have) == 240
    finally:
        s2.stop()
    # Faults on the S3 target: flip a bit in a chunk, then delete one.
    objs = sorted(p for p in (tmp_path / "s3" / "archive" / "tm").glob("tl-*/log/*.tmlog._S3rver_object"))
    assert len(objs) >= 2
    victim = objs[0]
    b = bytearray(victim.read_bytes())
    b[len(b) // 2] ^= 1
    victim.write_bytes(bytes(b))
    name = str(victim.relative_to(tmp_path / "s3" / "archive" / "tm"))[: -len("._S3rver_object")]
    v = tm(s3, "archive", "verify", check=False)
    assert v.returncode == 1 and name in v.stdout, v.stdout


def test_s3_wrong_secret_is_a_clear_error(tmp_path, s3, monkeypatch):
    srv = Server(str(tmp_path / "data"), url(), s3args(s3)).start()
    assert srv.stop() == 0
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    v = tm(s3, "archive", "verify", check=False)
    assert v.returncode != 0 and "403 SignatureDoesNotMatch" in v.stderr, v.stderr
    # Those rejections were intended: clear the proxy log for the fixture check.
    open(s3.proxy.log_path, "w").close()


def test_s3_credentials_from_flags_and_config_file(tmp_path, s3, monkeypatch):
    """Credentials as flags (serve, restore, archive status|verify), from a
    config file, and the precedence flag > config file > environment."""
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    creds = ["--archive-s3-access-key-id", s3rver.KEY, "--archive-s3-secret-access-key", s3rver.KEY]
    p = run("archive", "status", "--archive-url", url(), *s3args(s3), check=False)
    assert p.returncode == 1 and "S3 credentials missing" in p.stderr, p.stderr
    p = run("archive", "status", "--archive-url", url(), *s3args(s3),
            "--archive-s3-access-key-id", s3rver.KEY, check=False)
    assert p.returncode == 1 and "credentials incomplete" in p.stderr, p.stderr

    # serve with the credentials as flags, no environment.
    data = str(tmp_path / "data")
    srv = Server(data, url(), s3args(s3) + creds).start().wait_archiving()
    kv, _, ch = srv.kv()
    for i in range(20):
        kv.Put(etcdrpc.PutRequest(key=b"k%02d" % i, value=b"v%d" % i))
    ch.close()
    assert srv.stop() == 0
    st = run("archive", "status", "--archive-url", url(), *s3args(s3), *creds, check=True).stdout
    assert "archived through: index" in st, st
    v = run("archive", "verify", "--archive-url", url(), *s3args(s3), *creds, check=True).stdout
    assert "verify OK" in v, v
    out = restore(url(), str(tmp_path / "r1"), "--latest", *s3args(s3), *creds).stdout
    assert "revision:      21\n" in out, out

    # restore / verify from a config file alone (the serve config file's keys).
    cfg = tmp_path / "tm.yaml"
    cfg.write_text(f"archive-url: {url()}\narchive-s3-endpoint: {s3.endpoint}\n"
                   f"archive-s3-access-key-id: {s3rver.KEY}\n"
                   f"archive-s3-secret-access-key: {s3rver.KEY}\n")
    v = run("archive", "verify", "--config-file", str(cfg), check=True).stdout
    assert "verify OK" in v, v
    out = restore(None, str(tmp_path / "r2"), "--config-file", str(cfg)).stdout
    assert "revision:      21\n" in out, out
    # flag > config file: a wrong secret given as a flag wins (and is refused).
    # (credentials are one unit: the flags name both, or neither.)
    p = run("archive", "verify", "--config-file", str(cfg), "--archive-s3-access-key-id",
            s3rver.KEY, "--archive-s3-secret-access-key", "wrong-secret", check=False)
    assert p.returncode == 1 and "403 SignatureDoesNotMatch" in p.stderr, p.stderr
    p = run("archive", "verify", "--config-file", str(cfg),
            "--archive-s3-secret-access-key", "wrong-secret", check=False)
    assert p.returncode == 1 and "credentials incomplete" in p.stderr, p.stderr
    # config file > environment, flags > environment.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3rver.KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    run("archive", "verify", "--config-file", str(cfg), check=True)
    run("archive", "status", "--archive-url", url(), *s3args(s3), *creds, check=True)
    # serve with --config-file holding the credentials (wrong ones in the env).
    s2 = Server(data, None)
    scfg = tmp_path / "serve.yaml"
    scfg.write_text(f"data-dir: {data}\nlisten-client-urls: http://{s2.endpoint}\n"
                    f"advertise-client-urls: http://{s2.endpoint}\n"
                    f"archive-url: {url()}\narchive-s3-endpoint: {s3.endpoint}\n"
                    f"archive-s3-access-key-id: {s3rver.KEY}\n"
                    f"archive-s3-secret-access-key: {s3rver.KEY}\n")
    s2.extra = ["--config-file", str(scfg)]
    s2.start().wait_archiving()
    kv, _, ch = s2.kv()
    kv.Put(etcdrpc.PutRequest(key=b"after", value=b"1"))
    ch.close()
    assert s2.stop() == 0
    out = restore(url(), str(tmp_path / "r3"), "--latest", *s3args(s3), *creds).stdout
    assert "revision:      22\n" in out, out
    # The wrong-secret rejection above was intended: clear the proxy log.
    open(s3.proxy.log_path, "w").close()


def test_s3_second_writer_is_fenced_by_conditional_put(tmp_path, s3):
    """Two copies of one data dir archive to the same S3 timeline: the first to ship a chunk
    name wins, the other's create-only PUT (If-None-Match: *) gets 412 and it stops archiving
    instead of overwriting; the archive keeps only the winner's history."""
    a_dir, b_dir = str(tmp_path / "a"), str(tmp_path / "b")
    # Long interval: nothing ships until shutdown, so both resume at the same point.
    extra = s3args(s3) + ["--archive-interval", "60s"]
    a = Server(a_dir, url(), extra).start().wait_archiving()
    assert a.stop() == 0
    shutil.copytree(a_dir, b_dir)  # same timeline, same archived position
    a = Server(a_dir, url(), extra).start().wait_archiving()
    b = Server(b_dir, url(), extra).start().wait_archiving()
    for srv, who in ((a, b"a"), (b, b"b")):
        kv, _, ch = srv.kv()
        kv.Put(etcdrpc.PutRequest(key=b"who", value=who))
        ch.close()
    assert a.stop() == 0  # ships its chunk first
    rc = b.stop()
    assert rc != 0, "the second writer must not report a clean shutdown"
    log = b.log()
    assert "fenced" in log and "already exists" in log, log[-2000:]
    assert tm(s3, "archive", "verify").returncode == 0
    restore(url(), str(tmp_path / "r"), "--latest", "--archive-s3-endpoint", s3.endpoint)
    r = Server(str(tmp_path / "r")).start()
    try:
        _, have = read_all(r.endpoint)
        assert have[b"who"][0] == b"a"
    finally:
        r.stop()
