#!/usr/bin/env bash
# Installs the X server and libraries the napari plugin's tests need (tests/test_napari*.py) from
# Debian: Xvfb (a virtual display, started for the test session by the pytest-xvfb plugin), Mesa's
# software OpenGL (napari's canvas needs OpenGL, which Qt's offscreen platform does not give it), and
# the xcb libraries Qt's X11 platform loads. Without root or apt-get it says so and exits 0: the
# napari tests then skip, naming what is missing.
set -euo pipefail
packages=(xvfb xauth libgl1-mesa-dri libegl1 libdbus-1-3 libxkbcommon-x11-0 libxcb-icccm4
  libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xinput0
  libxcb-xfixes0 libxcb-shape0 libxcb-cursor0)
if command -v Xvfb >/dev/null && dpkg -s "${packages[@]}" >/dev/null 2>&1; then
  echo "install-napari-deps: Xvfb and the Qt/OpenGL libraries already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-napari-deps: needs root and apt-get to install ${packages[*]}; the napari tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-napari-deps: $(dpkg-query -W -f '${Package} ${Version}' xvfb) and the Qt/OpenGL libraries installed"
