#!/usr/bin/env bash
# One command: install dependencies, build (Release) and start tidemark on
# 127.0.0.1:2379 with the embedded defaults (data dir ./tidemark.data).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
exec "$root/build/src/cli/tidemark" serve "$@"
