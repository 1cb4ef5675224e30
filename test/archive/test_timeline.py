"""Timelines: a restored store archives on a NEW timeline whose record points
at its parent (timeline, index); the parent timeline is left untouched; a
restore of the newest timeline holds the writes made after the restore."""
import json
import time

from etcd3 import etcdrpc

from tmarchive import Server, read_all, restore, run


def test_restored_server_continues_on_new_timeline(tmp_path):
    arch_dir = tmp_path / "archive"
    url = f"file://{arch_dir}"
    src = Server(str(tmp_path / "src"), url, ["--archive-interval", "100ms"]).start().wait_archiving()
    kv, _, ch = src.kv()
    for i in range(100):
        kv.Put(etcdrpc.PutRequest(key=b"a%03d" % i, value=b"1"))
    ch.close()
    assert src.stop() == 0
    parent = json.load(open(tmp_path / "src" / "archive.json"))["timeline"]

    out = restore(url, str(tmp_path / "r1"), "--to-revision", "51").stdout
    restored_index = int(out.split("index:")[1].split()[0])
    child = json.load(open(tmp_path / "r1" / "archive.json"))
    assert child["parent"] == parent and child["parent_index"] == restored_index
    r1 = Server(str(tmp_path / "r1"), url, ["--archive-interval", "100ms"]).start()
    kv, _, ch = r1.kv()
    for i in range(20):
        kv.Put(etcdrpc.PutRequest(key=b"b%03d" % i, value=b"2"))
    ch.close()
    assert r1.stop() == 0

    records = sorted(p.name for p in (arch_dir / "timelines").iterdir())
    assert len(records) == 2 and records[-1].endswith(child["timeline"] + ".json")
    rec = json.load(open(arch_dir / "timelines" / records[-1]))
    assert rec["parent"] == parent and rec["parent_index"] == restored_index
    for tl in (parent, child["timeline"]):
        run("archive", "verify", "--archive-url", url, "--timeline", tl, "--deep", check=True)

    # Newest timeline: 50 "a" keys + 20 "b" keys at revision 71.
    out = restore(url, str(tmp_path / "r2"), "--latest").stdout
    assert "revision:      71\n" in out, out
    s = Server(str(tmp_path / "r2")).start()
    try:
        _, have = read_all(s.endpoint)
        assert len([k for k in have if k.startswith(b"a")]) == 50
        assert len([k for k in have if k.startswith(b"b")]) == 20
    finally:
        s.stop()
    # The parent timeline still restores to its own end.
    out = restore(url, str(tmp_path / "r3"), "--latest", "--timeline", parent).stdout
    assert "revision:      101\n" in out, out
