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
# Test tools from outside the C++ build: s3rver (npm, pinned by its lock file)
# for the S3 archive tests, and etcd's own benchmark tool (built offline from
# Debian's etcd source package) for the harness-agreement test.
(cd test/archive/node && npm ci --no-audit --no-fund --loglevel=error --ignore-scripts)
bench/build-etcd-benchmark.sh >/dev/null
# Process-level tests against the built binary with the real clients (etcdctl,
# python3-etcd3, npm etcd3 installed by `npm ci` from test/compat/node's lock
# file into a cache dir, Go clientv3 built offline). Debian's python, not a
# pyenv one that may come first in PATH.
TIDEMARK_BIN="$root/build/src/cli/tidemark" /usr/bin/python3 -m pytest -q test "${@}"
