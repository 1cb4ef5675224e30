"""Small helpers shared by the benchmark scripts in this folder (stdlib only).

The scripts are run by path (/usr/bin/python3 bench/<script>.py), so Python puts
this folder first on sys.path and `import bench_common` finds this file.
"""

import socket
import sys
import time


def make_log(name):
    """-> log(msg): '[name HH:MM:SS] msg' on stderr, flushed."""
    def log(msg):
        print(f"[{name} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
    return log


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on a clash)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
