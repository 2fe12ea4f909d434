"""Model engines: ONNX Runtime sessions and native TensorRT engines behind one ``run(feeds)``
interface, and the manifests that describe an exported model.

Nothing here imports torch or the exporter; :mod:`samedenhancer.registry` resolves a model name to
its engines (and exports the embedded model on first use).
"""

from __future__ import annotations

from .manifest import CACHE_ENV, MODELS, VARIANTS, Manifest, StaleExportError, cache_dir, static_manifest
from .ort import PROVIDER_ALIASES, OrtEngine, TensorInfo, available_providers, resolve_providers
from .tensorrt import TRT_POINTS, TRT_PROMPTS, TensorRTEngine, tensorrt_missing

__all__ = [
    "CACHE_ENV",
    "MODELS",
    "PROVIDER_ALIASES",
    "Manifest",
    "OrtEngine",
    "StaleExportError",
    "TensorInfo",
    "TRT_POINTS",
    "TRT_PROMPTS",
    "TensorRTEngine",
    "VARIANTS",
    "available_providers",
    "cache_dir",
    "resolve_providers",
    "static_manifest",
    "tensorrt_missing",
]
