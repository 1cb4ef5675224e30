#!/usr/bin/env bash
# Build etcd's own load generator (tools/benchmark from etcd 3.4) offline, from
# Debian's etcd *source* package, and print the path of the resulting binary.
#
# Idempotent: every step is skipped when its result is already there; a second
# run only prints the path. Nothing is downloaded except through apt.
#
# Environment:
#   TIDEMARK_BENCH_CACHE  cache dir (default: $HOME/.cache/tidemark-bench)
#   REBUILD=1             rebuild the binary even if it exists
#
# Output: the absolute path of the binary on stdout (the only stdout line); all
# progress goes to stderr, so `BIN=$(bench/build-etcd-benchmark.sh)` works.
set -euo pipefail

CACHE_DIR="${TIDEMARK_BENCH_CACHE:-$HOME/.cache/tidemark-bench}"
BIN="$CACHE_DIR/etcd-benchmark"
SRC_LIST=/etc/apt/sources.list.d/tidemark-bench-debsrc.sources
APT=(apt-get -o DPkg::Lock::Timeout=600)

log() { printf '[build-etcd-benchmark] %s\n' "$*" >&2; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then
    SUDO=(sudo)
  else
    log "not root and no sudo: apt steps will fail if anything is missing"
  fi
fi

if [[ -x "$BIN" && "${REBUILD:-0}" != 1 ]] && "$BIN" --help >/dev/null 2>&1; then
  log "already built"
  echo "$BIN"
  exit 0
fi

mkdir -p "$CACHE_DIR"

# 1. Build dependencies, only if missing (so a rerun never waits for apt's lock).
missing=()
for p in dpkg-dev golang-go golang-etcd-server-dev; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  "${SUDO[@]}" "${APT[@]}" update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" "${APT[@]}" install -y -q "${missing[@]}" >&2
fi

# 2. The source version matching the installed -dev package (e.g. 3.4.23-4).
VER=$(dpkg-query -W -f='${Version}' golang-etcd-server-dev)
UPSTREAM=${VER#*:}
UPSTREAM=${UPSTREAM%-*}
SRCDIR="$CACHE_DIR/etcd-$UPSTREAM"

if [[ ! -d "$SRCDIR/tools/benchmark" ]]; then
  # 3. A deb-src entry for bookworm, unless apt can already find the source.
  #    Debian 12 keeps its list in deb822 format in
  #    /etc/apt/sources.list.d/debian.sources: add our own file, never edit it.
  if [[ ! -f "$SRC_LIST" ]] &&
     ! "${APT[@]}" source --print-uris -qq "etcd=$VER" >/dev/null 2>&1; then
    log "adding $SRC_LIST (deb-src for bookworm)"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    {
      echo "# Added by tidemark bench/build-etcd-benchmark.sh: source packages (etcd tools/benchmark)."
      echo "Types: deb-src"
      echo "URIs: http://deb.debian.org/debian"
      echo "Suites: bookworm bookworm-updates"
      echo "Components: main"
      if [[ -f $keyring ]]; then echo "Signed-By: $keyring"; fi
    } | "${SUDO[@]}" tee "$SRC_LIST" >/dev/null
    "${SUDO[@]}" "${APT[@]}" update -qq >&2
  fi

  # 4. apt-get source into the cache dir (unpacks etcd-<upstream>/).
  log "apt-get source etcd=$VER into $CACHE_DIR"
  fetch() { (cd "$CACHE_DIR" && "${APT[@]}" source -q "etcd=$VER" >&2); }
  if ! fetch; then
    log "apt-get source failed; refreshing the package lists once and retrying"
    "${SUDO[@]}" "${APT[@]}" update -qq >&2
    fetch
  fi
  if [[ ! -d "$SRCDIR/tools/benchmark" ]]; then
    log "no $SRCDIR/tools/benchmark after apt-get source"
    exit 1
  fi
fi

# 5. Build offline in GOPATH mode: our copy of tools/benchmark first, every
#    other package (clientv3, pkg/report, grpc, ...) from /usr/share/gocode.
GP="$CACHE_DIR/gopath"
PKG="$GP/src/go.etcd.io/etcd/tools/benchmark"
rm -rf "$PKG"
mkdir -p "$(dirname "$PKG")"
cp -r "$SRCDIR/tools/benchmark" "$PKG"
log "go build (GOPATH mode, offline)"
(
  cd "$PKG"
  export GO111MODULE=off GOPROXY=off GOFLAGS='' GOPATH="$GP:/usr/share/gocode"
  export GOCACHE="${GOCACHE:-$CACHE_DIR/go-build}"
  go build -o "$BIN.tmp" . >&2
)
mv -f "$BIN.tmp" "$BIN"
"$BIN" --help >/dev/null
log "built $BIN"
echo "$BIN"
