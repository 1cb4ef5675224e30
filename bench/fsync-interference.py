#!/usr/bin/python3
"""Does the archive's disk traffic slow the WAL's fdatasync?

The part of archiving's cost that paired server runs cannot see (both servers
of a pair share the disk): a directory archive writes ~1 MiB chunk objects
(write, fsync, rename, fsync of the directory: two ext4 journal commits each)
on the disk the WAL group-commits to. This script replays both I/O patterns
without a server and measures the WAL side:

  WAL:     write(--wal-bytes) + fdatasync, back to back, into a file that is
           preallocated like tidemark's segments (fallocate), and, for
           comparison, into a zero-filled one (--zero-filled);
  archive: every --chunk-interval seconds one --chunk-bytes object written the
           way the directory object store does (temp file, fsync, rename,
           fsync dir), old objects removed.

Phases alternate quiet / archive traffic (--phases pairs of --seconds each),
so drifting disk latency hits both alike. Prints fdatasync p50/p99/p99.9 and
syncs/s per phase kind (medians over phases) and the difference.

  /usr/bin/python3 bench/fsync-interference.py [--dir D] [--phases 6] [--seconds 5]

D must be on the file system under test (default: a temp dir under ./); it is
removed afterwards. Stdlib only.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time


def archive_traffic(d, chunk_bytes, interval, stop):
    blob = os.urandom(chunk_bytes)
    i = 0
    while not stop.is_set():
        tmp = os.path.join(d, f"chunk-{i}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        try:
            os.write(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(d, f"chunk-{i}"))
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        if i >= 4:
            os.unlink(os.path.join(d, f"chunk-{i - 4}"))
        i += 1
        stop.wait(interval)


def wal_phase(path, seconds, wal_bytes, zero_filled):
    """fdatasync latencies (us) of back-to-back appends for `seconds`."""
    size = 256 << 20
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    try:
        if zero_filled:
            block = b"\0" * (1 << 20)
            for _ in range(size >> 20):
                os.write(fd, block)
            os.fsync(fd)
            os.lseek(fd, 0, os.SEEK_SET)
        else:
            os.posix_fallocate(fd, 0, size)
            os.fsync(fd)
        buf = os.urandom(wal_bytes)
        lat = []
        end = time.monotonic() + seconds
        written = 0
        while time.monotonic() < end and written + wal_bytes <= size:
            t = time.perf_counter()
            os.write(fd, buf)
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1e6)
            written += wal_bytes
        return lat
    finally:
        os.close(fd)
        os.unlink(path)


def summary(lat, seconds):
    lat = sorted(lat)
    n = len(lat)
    return {"p50": lat[n // 2], "p99": lat[min(n - 1, int(n * 0.99))],
            "p999": lat[min(n - 1, int(n * 0.999))], "rate": n / seconds}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", help="directory on the file system under test (default: temp dir in ./)")
    ap.add_argument("--phases", type=int, default=6, help="quiet/archive phase pairs")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of one phase")
    ap.add_argument("--wal-bytes", type=int, default=8192, help="bytes per WAL append (one group commit)")
    ap.add_argument("--chunk-bytes", type=int, default=1 << 20, help="archive object size")
    ap.add_argument("--chunk-interval", type=float, default=0.2, help="seconds between archive objects")
    ap.add_argument("--zero-filled", action="store_true", help="WAL file zero-filled instead of fallocated")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="fsync-interference-", dir=a.dir or ".")
    arch = os.path.join(d, "archive")
    os.makedirs(arch)
    res = {"quiet": [], "archive": []}
    try:
        for p in range(a.phases):
            kinds = ["quiet", "archive"] if p % 2 == 0 else ["archive", "quiet"]
            for kind in kinds:
                stop = threading.Event()
                t = None
                if kind == "archive":
                    t = threading.Thread(target=archive_traffic,
                                         args=(arch, a.chunk_bytes, a.chunk_interval, stop))
                    t.start()
                try:
                    lat = wal_phase(os.path.join(d, "wal"), a.seconds, a.wal_bytes, a.zero_filled)
                finally:
                    stop.set()
                    if t:
                        t.join()
                s = summary(lat, a.seconds)
                res[kind].append(s)
                print(f"phase {p + 1} {kind:7s}: fdatasync p50 {s['p50']:.0f} us, p99 {s['p99']:.0f} us, "
                      f"p99.9 {s['p999']:.0f} us, {s['rate']:.0f} syncs/s", flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    med = {k: {m: statistics.median(s[m] for s in v) for m in ("p50", "p99", "p999", "rate")}
           for k, v in res.items()}
    wal = "zero-filled" if a.zero_filled else "fallocated"
    print(f"\nmedians over {a.phases} phases each ({wal} WAL file, {a.wal_bytes} B per sync; archive "
          f"{a.chunk_bytes >> 10} KiB objects every {a.chunk_interval} s):")
    for k in ("quiet", "archive"):
        m = med[k]
        print(f"  {k:7s}: p50 {m['p50']:.0f} us, p99 {m['p99']:.0f} us, p99.9 {m['p999']:.0f} us, "
              f"{m['rate']:.0f} syncs/s")
    q, r = med["quiet"], med["archive"]
    print(f"  archive traffic changes WAL syncs/s by {100 * (r['rate'] / q['rate'] - 1):+.1f} %, "
          f"p99 by {r['p99'] - q['p99']:+.0f} us")


if __name__ == "__main__":
    main()
