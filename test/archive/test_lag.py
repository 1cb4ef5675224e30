"""tidemark_archive_lag_revisions counts store revisions (not WAL entries:
lease grants, failed transactions and compactions are entries but no
revision), and `tidemark archive status` reports lag with --endpoint (the
server's metrics) and without it (from the archive alone)."""
import re
import time

from etcd3 import etcdrpc

from tmarchive import Server, run
from test_outage import break_target, heal_target, wait_for


def test_lag_counts_revisions_not_entries(tmp_path):
    arch = tmp_path / "archive"
    url = f"file://{arch}"
    srv = Server(str(tmp_path / "data"), url, ["--archive-interval", "100ms"]).start().wait_archiving()
    kv, _, ch = srv.kv()
    lease = etcdrpc.LeaseStub(ch)
    kv.Put(etcdrpc.PutRequest(key=b"first", value=b"1"))
    wait_for(lambda: srv.metrics()["tidemark_archive_lag_seconds"] == 0 and
             srv.metrics()["tidemark_archive_lag_revisions"] == 0, what="archived")
    break_target(arch)
    for i in range(10):
        kv.Put(etcdrpc.PutRequest(key=b"k%d" % i, value=b"v"))  # 10 revisions
    for i in range(7):
        lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=600))  # entries, no revision
    for i in range(5):  # a transaction whose compare fails and has no else ops
        kv.Txn(etcdrpc.TxnRequest(
            compare=[etcdrpc.Compare(key=b"k0", result=etcdrpc.Compare.EQUAL,
                                     target=etcdrpc.Compare.VALUE, value=b"nope")],
            success=[etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=b"x", value=b"y"))]))
    kv.Compact(etcdrpc.CompactionRequest(revision=3))
    m = srv.metrics()
    assert m["tidemark_archive_lag_revisions"] == 10, m
    st = run("archive", "status", "--archive-url", url, "--endpoint", f"http://{srv.endpoint}",
             check=False)
    # The archive is unreachable (a file): status fails clearly, or names the server lag.
    if st.returncode == 0:
        assert re.search(r"server lag: +\S+ s, 10 revisions", st.stdout), st.stdout
    heal_target(arch)
    wait_for(lambda: srv.metrics()["tidemark_archive_lag_revisions"] == 0, what="catch-up")
    st = run("archive", "status", "--archive-url", url, "--endpoint", f"http://{srv.endpoint}",
             check=True).stdout
    assert re.search(r"server lag: +\S+ s, 0 revisions", st), st
    t_before = time.time()
    kv.Put(etcdrpc.PutRequest(key=b"last", value=b"1"))  # revision 13
    t_after = time.time()
    # The restorable window in metrics: first base (revision 1) .. the newest archived commit.
    wait_for(lambda: srv.metrics()["tidemark_archive_restorable_newest_revision"] == 13,
             what="window reaches revision 13")
    m = srv.metrics()
    assert m["tidemark_archive_restorable_oldest_revision"] == 1, m
    assert 0 < m["tidemark_archive_restorable_oldest_timestamp_seconds"] <= t_before, m
    assert t_before - 0.01 <= m["tidemark_archive_restorable_newest_timestamp_seconds"] <= t_after + 0.01, m
    ch.close()
    assert srv.stop() == 0
    # Without --endpoint: from the archive alone.
    t0 = time.time()
    st = run("archive", "status", "--archive-url", url, check=True).stdout
    t1 = time.time()
    print(st)
    assert re.search(r"archived through: index \d+ \(revision 13\), committed ", st), st
    # The restorable window: from the first base (revision 1) to the newest archived revision.
    assert re.search(r"restorable: +\S+ \.\. \S+, revisions 1 \.\. 13\n", st), st
    lag = float(re.search(r"archive lag: +([0-9.]+) s since the newest archived commit", st).group(1))
    assert t0 - t_after - 0.01 <= lag <= t1 - t_before + 0.01, (lag, t0 - t_after, t1 - t_before)
    assert "last heard:" in st
