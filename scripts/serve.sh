#!/usr/bin/env bash
# One command: install dependencies, build (Release) and start tidemark on
# 127.0.0.1:2379 with the embedded defaults: data in ./default.tidemark and a
# continuous archive of every committed revision in ./default.archive (pass
# your own --archive-url to change it). Extra arguments go to `tidemark serve`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
args=("$@")
has_archive=0
for a in "${args[@]}"; do
  [[ "$a" == --archive-url* ]] && has_archive=1
done
if [[ $has_archive -eq 0 ]]; then
  args+=(--archive-url "file://$PWD/default.archive")
fi
exec "$root/build/src/cli/tidemark" serve "${args[@]}"
