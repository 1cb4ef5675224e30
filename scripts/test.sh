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
if [[ -f test/compat/node/package-lock.json ]]; then
  (cd test/compat/node && npm ci --no-audit --no-fund --loglevel=error)
fi
TIDEMARK_BIN="$root/build/src/cli/tidemark" /usr/bin/python3 -m pytest -q -p no:cacheprovider test "${@}"
