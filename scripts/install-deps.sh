#!/usr/bin/env bash
# Installs everything Tidemark needs to build, run and test, from Debian 12's
# packages (apt-get) and, for test tools only, npm. Idempotent; needs root
# (or sudo). Usage: scripts/install-deps.sh [--test]
set -euo pipefail
want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
APT=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y --no-install-recommends)

build_pkgs=(
  build-essential cmake pkg-config git
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev libabsl-dev
  librocksdb-dev libzstd-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libcpp-httplib-dev libyaml-cpp-dev prometheus-cpp-dev systemtap-sdt-dev
  libcurl4-openssl-dev libssl-dev zlib1g-dev
  libleveldb-dev liblmdb-dev libsqlite3-dev  # tidemark bench engines (optional in CMake)
)
test_pkgs=(
  libgtest-dev libgmock-dev
  etcd-server etcd-client
  python3 python3-pytest python3-etcd3 python3-grpcio python3-protobuf
  golang-go golang-etcd-server-dev
  nodejs npm curl
)

pkgs=("${build_pkgs[@]}")
if [[ $want_test -eq 1 ]]; then pkgs+=("${test_pkgs[@]}"); fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "install-deps: installing ${missing[*]}" >&2
  # nodejs/npm may already be present outside dpkg (e.g. a preinstalled node); skip them then.
  if command -v node >/dev/null && command -v npm >/dev/null; then
    filtered=()
    for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
    missing=("${filtered[@]}")
  fi
  if [[ ${#missing[@]} -gt 0 ]]; then
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    "${APT[@]}" install "${missing[@]}"
  fi
fi
