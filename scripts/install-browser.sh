#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver from Debian (chromium, chromium-driver) for the browser
# test of `samedenhancer annotate` (tests/test_annotate_browser.py drives it through selenium).
# Without root or apt-get it says so and exits 0: that test then skips, naming what is missing.
set -euo pipefail
bash "$(dirname "$0")/apt-install.sh" install-browser "the browser test will skip" chromium chromium-driver
if command -v chromium >/dev/null; then echo "install-browser: $(chromium --version 2>/dev/null)"; fi
