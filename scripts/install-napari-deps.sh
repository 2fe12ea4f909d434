#!/usr/bin/env bash
# Installs what the napari plugin's tests (tests/test_napari*.py) need from Debian: Xvfb (a virtual
# X display, started for the test session by the pytest-xvfb plugin), Mesa's software OpenGL
# (napari's canvas needs OpenGL, which Qt's offscreen platform does not give it) and the xcb
# libraries Qt's X11 platform loads. Without root or apt-get the napari tests skip.
set -euo pipefail
exec bash "$(dirname "$0")/apt-install.sh" install-napari-deps "the napari tests will skip" \
  xvfb xauth libgl1-mesa-dri libegl1 libdbus-1-3 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 \
  libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xinput0 libxcb-xfixes0 \
  libxcb-shape0 libxcb-cursor0
