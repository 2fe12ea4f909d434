#!/usr/bin/env bash
# Installs Debian packages for a test that needs them, once:
#   scripts/apt-install.sh NAME "WHAT SKIPS WITHOUT THEM" PACKAGE...
# Packages already installed are left alone; without root or apt-get it says what is missing and
# exits 0 (the test that needs them then skips, naming what is missing).
set -euo pipefail
name=$1 consequence=$2
shift 2
if dpkg -s "$@" >/dev/null 2>&1; then
  echo "$name: $* already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "$name: needs root and apt-get to install $*; $consequence" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "$@" >/dev/null
echo "$name: installed $*"
