#!/usr/bin/env bash
# deps.sh: installs the Debian packages the build needs, only those missing.
# Usage: scripts/deps.sh [extra-package ...]
set -euo pipefail
# netbase: /etc/services and /etc/protocols, which service names in
# getaddrinfo()/getnameinfo() (and tests/io/names_test.cpp) read.
packages=(g++ cmake make libboost-context-dev libboost-fiber-dev libgtest-dev libgmock-dev
          libbenchmark-dev libssl-dev valgrind python3 netbase "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> installing: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "error: missing packages and not root; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "==> dependencies present"
