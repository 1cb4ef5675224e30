#!/usr/bin/env bash
# Configures and builds Tidemark in Release mode into build/ (override with BUILD_DIR).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
jobs=${JOBS:-$(nproc)}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release ${TM_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$jobs"
