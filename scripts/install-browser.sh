#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver from Debian (chromium, chromium-driver) for the browser
# test of `samedenhancer annotate` (tests/test_annotate_browser.py drives it through selenium).
# Without root or apt-get it says so and exits 0: that test then skips, naming what is missing.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  echo "install-browser: $(chromium --version 2>/dev/null || echo chromium) and chromedriver already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-browser: needs root and apt-get to install chromium chromium-driver; the browser test will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium chromium-driver >/dev/null
echo "install-browser: $(chromium --version)"
