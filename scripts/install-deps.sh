#!/usr/bin/env bash
# Installs meshfwd's build and test dependencies from Debian 12's archive. Idempotent: runs
# `apt-get update` once, and only when something is missing. Needs root.
set -euo pipefail

packages=(
  # build
  meson ninja-build pkg-config g++ clang libclang-rt-14-dev python3
  # libraries (DESIGN.md "Dependencies")
  libsodium-dev libb2-dev libipsec-mb-dev liburcu-dev liburing-dev libyaml-cpp-dev
  libspdlog-dev libcli11-dev nlohmann-json3-dev libdpdk-dev libmnl-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # meshcoord (coord/): its store (SQLite; PostgreSQL client and the server its tests start),
  # HTTP/WebSocket (Boost.Beast/Asio, OpenSSL), JWT
  libsqlite3-dev libpqxx-dev postgresql libboost-dev libssl-dev libjwt-dev
  # test peers and tools
  wireguard-tools wireguard-go iproute2 iputils-ping nftables iperf3 procps curl
  # bench/throughput chart
  gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: wireguard-tools would otherwise pull in a kernel image.
apt-get install -y -qq --no-install-recommends "${missing[@]}"
