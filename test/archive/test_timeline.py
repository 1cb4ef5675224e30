"""Timelines: a restored store archives on a NEW timeline whose record points
at its parent (timeline, index); the parent timeline is left untouched; a
restore of the newest timeline holds the writes made after the restore; a
target before the fork is restored from the parent, never past the fork."""
import datetime
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
    # After the parent's last commit (revision 101), before the child timeline exists.
    time.sleep(0.01)
    t_fork = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    t_fork = t_fork.replace("+00:00", "Z")
    time.sleep(0.01)

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

    # Before the fork the newest timeline's lineage is the parent's: revision 40 comes from the
    # parent (39 "a" keys)...
    out = restore(url, str(tmp_path / "r4"), "--to-revision", "40").stdout
    assert "revision:      40\n" in out and "keys:          39\n" in out, out
    assert f"(parent {parent} at index" in out, out
    # ...and a time after the parent's last write but before the child existed is the state
    # where the lineage left the parent (revision 51), not the parent's own end (101).
    out = restore(url, str(tmp_path / "r5"), "--to-time", t_fork).stdout
    assert "revision:      51\n" in out and f"at index {restored_index})" in out, out
    # After the fork, the child's own history: revision 60 has 50 "a" and 9 "b" keys.
    out = restore(url, str(tmp_path / "r6"), "--to-revision", "60").stdout
    assert "revision:      60\n" in out and "keys:          59\n" in out, out
