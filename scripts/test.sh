#!/usr/bin/env bash
# One command: install dependencies (build + test tools), build, and run the
# whole default test suite: unit tests (ctest) and compatibility tests with
# real etcd clients (pytest). Long soak/benchmark runs are not part of it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" --test
"$root/scripts/build.sh"
cd "$root/build"
ctest --output-on-failure -j "${JOBS:-$(nproc)}" --timeout 600
cd "$root"
# Process-level tests against the built binary with the real clients (etcdctl,
# python3-etcd3, npm etcd3 installed by `npm ci` from test/compat/node's lock
# file into a cache dir, Go clientv3 built offline). Debian's python, not a
# pyenv one that may come first in PATH.
TIDEMARK_BIN="$root/build/src/cli/tidemark" /usr/bin/python3 -m pytest -q test "${@}"
