"""`tidemark restore` progress: a progress bar (entries replayed / planned,
rate, ETA) only when stderr is a terminal (run under a pseudo-terminal with
the pty module); off a terminal no control characters at all."""
import os
import pty
import re
import subprocess
import time

import pytest

from tmarchive import Server, Writers, binary, run


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("progress")
    url = f"file://{tmp / 'archive'}"
    srv = Server(str(tmp / "data"), url, ["--archive-interval", "100ms"]).start().wait_archiving()
    w = Writers(srv.endpoint, n=10).start()
    t_end = time.monotonic() + 20
    while len(w.acked) < 3000:  # enough entries for several chunks
        assert time.monotonic() < t_end, "writers too slow"
        time.sleep(0.05)
    w.stop()
    assert srv.stop() == 0
    return url, tmp


def replayed(stdout):
    return int(re.search(r"replayed: +(\d+) entries from (\d+) chunks", stdout).group(1))


def test_restore_progress_bar_on_a_terminal(archive, tmp_path):
    url, _ = archive
    master, slave = pty.openpty()
    p = subprocess.Popen([binary(), "restore", "--archive-url", url, "--data-dir",
                          str(tmp_path / "r"), "--latest"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    tty = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        tty += chunk
    os.close(master)
    stdout = p.stdout.read().decode()
    assert p.wait(60) == 0, (stdout, tty)
    text = tty.decode(errors="replace")
    print(repr(text[-400:]))
    n = replayed(stdout)
    assert n >= 3000, stdout
    frames = [f for f in re.split(r"[\r\n]", text) if f.strip()]
    bars = [f for f in frames if "restore [" in f]
    assert len(bars) >= 2, frames  # at least the first and the final frame
    assert re.search(r"restore \[=+\] 100% (\d+)/\1 entries, \d+ chunks, [0-9.]+[kM]? entries/s, "
                     r"done in \d+:\d\d", bars[-1]), bars[-1]
    assert f" {n}/{n} entries" in bars[-1], (n, bars[-1])
    assert re.search(r"restore \[[ =>]+\] +\d+% 0/\d+ entries", bars[0]), bars[0]
    assert "\x1b[K" in text and text.rstrip(" ").endswith("\n")
    # No JSON progress log lines on a terminal: the bar replaces them.
    assert "loading base" not in text or '"msg"' not in text


def test_restore_without_a_terminal_has_no_control_characters(archive, tmp_path):
    url, _ = archive
    p = run("restore", "--archive-url", url, "--data-dir", str(tmp_path / "r"), "--latest",
            check=True)
    for name, out in (("stdout", p.stdout), ("stderr", p.stderr)):
        bad = re.findall(r"[\x00-\x09\x0b-\x1f\x7f]", out)
        assert not bad, f"{name} has control characters {bad[:5]!r}: {out[:500]!r}"
    assert "restore [" not in p.stderr
    assert re.search(r"replayed: +\d+ entries from \d+ chunks \(.* entries/s\)", p.stdout), p.stdout
