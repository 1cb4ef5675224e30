"""`tidemark restore --bump-revision N --mark-compacted`, as etcdutl's: after the replay the
revision jumps by N without touching any key and becomes the compaction point, so no revision a
client saw before the restore is reused and watchers/caches of older revisions are told to
re-list (compacted). The two flags go together."""
import queue

import grpc
import pytest
from etcd3 import etcdrpc

from tmarchive import Server, restore

COMPACTED = "etcdserver: mvcc: required revision has been compacted"


def test_bump_revision_and_mark_compacted(tmp_path):
    url = f"file://{tmp_path / 'archive'}"
    src = Server(str(tmp_path / "src"), url, ["--archive-interval", "100ms"]).start().wait_archiving()
    kv, _, ch = src.kv()
    for i in range(10):
        kv.Put(etcdrpc.PutRequest(key=b"k%d" % i, value=b"v%d" % i))  # revisions 2..11
    ch.close()
    assert src.stop() == 0

    for bad in (["--bump-revision", "5"], ["--mark-compacted"], ["--bump-revision", "-1", "--mark-compacted"]):
        p = restore(url, str(tmp_path / "bad"), "--latest", *bad, check=False)
        assert p.returncode != 0 and "--mark-compacted is required with --bump-revision" in p.stderr, p
        assert not (tmp_path / "bad").exists()

    out = restore(url, str(tmp_path / "r"), "--latest", "--bump-revision", "1000",
                  "--mark-compacted").stdout
    assert "revision:      1011\n" in out, out
    assert "bumped:        +1000 from revision 11; compacted at 1011\n" in out, out
    srv = Server(str(tmp_path / "r"), url).start()
    try:
        kv, _, ch = srv.kv()
        r = kv.Range(etcdrpc.RangeRequest(key=b"k3"))
        assert r.header.revision == 1011
        assert r.kvs[0].value == b"v3" and r.kvs[0].mod_revision == 5  # keys untouched
        with pytest.raises(grpc.RpcError) as e:
            kv.Range(etcdrpc.RangeRequest(key=b"k3", revision=11))
        assert e.value.code() == grpc.StatusCode.OUT_OF_RANGE and e.value.details() == COMPACTED
        assert kv.Put(etcdrpc.PutRequest(key=b"after", value=b"1")).header.revision == 1012
        # A watcher resuming from before the restore is told to re-list.
        reqs = queue.Queue()
        reqs.put(etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(key=b"k3",
                                                                                start_revision=6)))
        stream = etcdrpc.WatchStub(ch).Watch(iter(reqs.get, None), timeout=15)
        created = next(stream)
        assert created.created
        canceled = next(stream)
        assert canceled.canceled and canceled.compact_revision == 1011, canceled
        reqs.put(None)
        ch.close()
    finally:
        srv.stop()
