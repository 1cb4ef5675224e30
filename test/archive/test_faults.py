"""Archive faults: a flipped bit, a truncated object, a deleted chunk, a
duplicated chunk and two reordered chunks. For each, `tidemark archive
verify` fails naming the object (or the missing range) and `tidemark
restore --latest` refuses with an error naming it."""
import os
import shutil

import pytest

from tmarchive import Server, Writers, restore, run
import time


@pytest.fixture(scope="module")
def clean_archive(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    arch_dir = base / "archive"
    srv = Server(str(base / "data"), f"file://{arch_dir}", ["--archive-interval", "100ms"]).start()
    w = Writers(srv.endpoint, n=8).start()
    time.sleep(2)
    w.stop()
    assert srv.stop() == 0
    p = run("archive", "verify", "--archive-url", f"file://{arch_dir}", "--deep", check=True)
    assert "verify OK" in p.stdout
    chunks = sorted(str(p) for p in arch_dir.glob("tl-*/log/*.tmlog"))
    assert len(chunks) >= 6, chunks
    return arch_dir


def copy_archive(clean, tmp_path):
    dst = tmp_path / "archive"
    shutil.copytree(clean, dst)
    chunks = sorted(dst.glob("tl-*/log/*.tmlog"))
    return dst, chunks


def rel(arch, p):
    return str(p.relative_to(arch))


def check_refused(arch, tmp_path, needle):
    url = f"file://{arch}"
    v = run("archive", "verify", "--archive-url", url, "--deep")
    assert v.returncode == 1, v.stdout + v.stderr
    assert needle in v.stdout, f"verify does not name {needle}:\n{v.stdout}"
    r = restore(url, str(tmp_path / "restored"), "--latest", check=False)
    assert r.returncode != 0, r.stdout
    assert needle in r.stderr, f"restore does not name {needle}:\n{r.stderr}"
    assert not os.path.exists(tmp_path / "restored" / "db"), "a refused restore left a data dir"


def test_flipped_bit(clean_archive, tmp_path):
    arch, chunks = copy_archive(clean_archive, tmp_path)
    victim = chunks[len(chunks) // 2]
    b = bytearray(victim.read_bytes())
    b[len(b) // 2] ^= 0x04
    victim.write_bytes(bytes(b))
    check_refused(arch, tmp_path, rel(arch, victim))


def test_truncated(clean_archive, tmp_path):
    arch, chunks = copy_archive(clean_archive, tmp_path)
    victim = chunks[2]
    victim.write_bytes(victim.read_bytes()[:-100])
    check_refused(arch, tmp_path, rel(arch, victim))


def test_deleted(clean_archive, tmp_path):
    arch, chunks = copy_archive(clean_archive, tmp_path)
    victim = chunks[3]
    first = int(victim.name.split(".")[0])
    nxt = int(chunks[4].name.split(".")[0])
    victim.unlink()
    check_refused(arch, tmp_path, f"{first}..{nxt - 1}")


def test_deleted_last_chunk(clean_archive, tmp_path):
    arch, chunks = copy_archive(clean_archive, tmp_path)
    chunks[-1].unlink()
    check_refused(arch, tmp_path, "manifest")


def test_duplicated(clean_archive, tmp_path):
    arch, chunks = copy_archive(clean_archive, tmp_path)
    # A copy of chunk 1 placed where a later chunk would go.
    last_first = int(chunks[-1].name.split(".")[0])
    dup = chunks[-1].parent / f"{last_first + 1:020d}.tmlog"
    shutil.copy(chunks[1], dup)
    check_refused(arch, tmp_path, rel(arch, dup))


def test_reordered(clean_archive, tmp_path):
    arch, chunks = copy_archive(clean_archive, tmp_path)
    a, b = chunks[2], chunks[3]
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    check_refused(arch, tmp_path, rel(arch, a))
