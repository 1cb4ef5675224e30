#!/bin/sh
# Dependencies of the etcd-compatibility suite (test/compat).  Idempotent; run as root.
#
#   apt : etcd-server etcd-client        reference etcd 3.4.23 + etcdctl 3.4.23
#         python3-pytest                 test runner (use /usr/bin/python3, not a pyenv python)
#         python3-etcd3                  python client 0.12 (pulls python3-grpcio, python3-protobuf,
#                                        python3-tenacity)
#         golang-go golang-etcd-server-dev   Go clientv3 3.4 sources, built offline (GOPATH mode)
#         nodejs (+ npm if node has none)    Node >= 18 for npm etcd3 1.1.2
#   npm : etcd3@1.1.2 (+ @grpc/grpc-js etc., pinned by test/compat/node/package-lock.json),
#         installed with `npm ci` into the suite's cache dir (outside the repo); pytest does the
#         same on first use, this just pre-warms it (the only step that needs the network).
set -eu

APT_PKGS="etcd-server etcd-client python3-pytest python3-etcd3 golang-go golang-etcd-server-dev"
if ! command -v node >/dev/null 2>&1; then
    APT_PKGS="$APT_PKGS nodejs"
fi
if ! command -v npm >/dev/null 2>&1; then
    APT_PKGS="$APT_PKGS npm"
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $APT_PKGS

# Pre-install the node probe's modules where test/compat/compatlib.py looks for them:
#   ${TM_COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tidemark-compat}/node/<sha256(package.json+lock)[:16]>
root=$(cd "$(dirname "$0")/.." && pwd)
node_src="$root/test/compat/node"
cache="${TM_COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tidemark-compat}"
key=$(cat "$node_src/package.json" "$node_src/package-lock.json" | sha256sum | cut -c1-16)
dest="$cache/node/$key"
if [ ! -f "$dest/node_modules/etcd3/package.json" ]; then
    rm -rf "$dest"
    mkdir -p "$dest"
    cp "$node_src/package.json" "$node_src/package-lock.json" "$dest/"
    (cd "$dest" && npm ci --no-audit --no-fund --ignore-scripts)
fi
echo "compat deps ready (node modules in $dest)"
