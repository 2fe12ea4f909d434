"""The model registry: a model name or folder -> its export folder -> manifest -> engines.

It stands above both :mod:`samedenhancer.engines` (which runs exported graphs and knows nothing of
export) and :mod:`samedenhancer.export` (which needs torch): the embedded LiteMedSAM is exported on
first use through the exporter's public ``export``, imported only then.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from .engines.export_folder import read_consistently
from .engines.manifest import (CACHE_ENV, DEFAULT_MODEL, MANIFEST_FILE, MODELS, VARIANTS, DamagedExportError, Manifest,
                               StaleExportError, cache_dir, remake_command)
from .engines.ort import OrtEngine, resolve_providers
from .engines.tensorrt import TRT_POINTS, TRT_PROMPTS, TensorRTEngine


class ModelMissingError(FileNotFoundError):
    """The model is not exported yet and cannot be exported here."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run: its manifest and the encoder and decoder engines."""

    manifest: Manifest
    encoder: OrtEngine | TensorRTEngine
    decoder: OrtEngine | TensorRTEngine


#: Every model name with a cache folder of its own: the exporter's models and their variants.
NAMED_MODELS = MODELS + tuple(VARIANTS)


def model_dir(model: str | os.PathLike = DEFAULT_MODEL) -> Path:
    """The folder holding (or to hold) ``model``'s export: the folder itself when ``model`` is one,
    else ``cache_dir() / model`` for a known model name."""
    if isinstance(model, os.PathLike) or (isinstance(model, str) and model not in NAMED_MODELS):
        path = Path(model)
        if path.is_dir():
            return path
        raise ValueError(f"model must be one of {NAMED_MODELS} or a folder holding {MANIFEST_FILE}, got {os.fspath(model)!r}")
    if not isinstance(model, str):
        raise TypeError(f"model must be a model name or a folder path, got {type(model).__name__}")
    return cache_dir() / model


def _export_problem(directory: Path) -> StaleExportError | None:
    """Why ``directory`` holds no current, whole export (``None`` when it does)."""
    try:
        read_consistently(directory, lambda: Manifest.load(directory).check_files())
    except StaleExportError as problem:  # stale, damaged or unreadable
        return problem
    except FileNotFoundError as missing:
        return StaleExportError(str(missing))
    return None


def _ensure_exported(model: str, directory: Path) -> None:
    """Export the embedded model (or a variant of it) asked for by name when its cache folder holds
    no current, whole export; for other model names, say which command makes the missing export."""
    if model not in NAMED_MODELS:
        return
    problem = _export_problem(directory)
    if problem is None:
        return
    base, quantize = VARIANTS.get(model, (model, None))
    if base != DEFAULT_MODEL:
        if (directory / MANIFEST_FILE).is_file():
            return  # a stale or damaged export of a user checkpoint: loading says which command remakes it
        raise ModelMissingError(
            f"model missing: {directory} holds no export of {model}; run `samedenhancer export {model} --checkpoint PATH` "
            "(needs the export extra)"
        )
    command = f"samedenhancer export {base}" + (f" --quantize {quantize}" if quantize else "")
    damaged = isinstance(problem, DamagedExportError)
    try:
        from samedenhancer.export import export, export_available
    except ImportError as exc:  # pragma: no cover - the export package ships with the wheel
        raise ModelMissingError(f"model missing: run `{command}` (needs the export extra): {exc}") from None
    missing = export_available()
    if missing:
        state = f"{problem}; " if damaged else f"{directory} holds no export and "
        raise ModelMissingError(f"model missing: {state}{missing} cannot be imported to export it; "
                                f"run `{command}` (needs the export extra)")
    if damaged:
        warnings.warn(f"the cached {model} export is damaged, exporting it again ({problem})", RuntimeWarning, stacklevel=4)
    try:
        export(base, out=directory, quantize=quantize)
    except (OSError, ValueError) as exc:
        raise ModelMissingError(
            f"model missing: cannot export {model} into the model cache {directory}: {exc}. Set {CACHE_ENV} to a "
            f"folder you can write, or run `{command} --out DIR` and give DIR as the model"
        ) from None


def _decoder_trt_options(manifest: Manifest) -> dict:
    side = manifest.low_res_size

    def shapes(i):
        masks = 1 if i < 2 else TRT_PROMPTS[i]
        return (f"point_coords:{TRT_PROMPTS[i]}x{TRT_POINTS[i]}x2,point_labels:{TRT_PROMPTS[i]}x{TRT_POINTS[i]},"
                f"mask_input:{masks}x1x{side}x{side},has_mask_input:{masks}")

    return {"trt_profile_min_shapes": shapes(0), "trt_profile_opt_shapes": shapes(1), "trt_profile_max_shapes": shapes(2)}


def load_model(model: str | os.PathLike = DEFAULT_MODEL, providers=None, *, intra_op_threads: int | None = None) -> LoadedModel:
    """Resolve ``model`` (a name from ``MODELS`` or an export folder) and open its engines.

    ONNX exports run in ONNX Runtime with ``providers`` (default CPU); TensorRT exports
    (``format="engine"``) run natively and take no ``providers``. A missing ``litemedsam`` export is
    made on first use when the export extra is importable; otherwise ``ModelMissingError`` says
    which command makes it.
    """
    directory = model_dir(model)
    _ensure_exported(os.fspath(model), directory)
    # no export replaces the folder while its manifest is read, its files checked and opened
    return read_consistently(directory, lambda: _open(directory, providers, intra_op_threads))


def _open(directory: Path, providers, intra_op_threads: int | None) -> LoadedModel:
    manifest = Manifest.load(directory)
    manifest.check_files()
    if manifest.format == "engine":
        if providers is not None:
            raise ValueError(f"providers= applies to ONNX exports; {directory} holds TensorRT engines (got {providers!r})")
        return LoadedModel(manifest, TensorRTEngine(manifest.file("encoder")), TensorRTEngine(manifest.file("decoder")))
    resolved = resolve_providers(providers)
    try:
        return _open_onnx(manifest, directory, resolved, intra_op_threads)
    except _unreadable_onnx() as exc:
        raise DamagedExportError(
            f"{directory} holds a damaged model file ({type(exc).__name__}: {exc}): re-run "
            f"`{remake_command(manifest.raw, directory)}`, or delete the folder (the embedded litemedsam is then "
            "exported again on first use)"
        ) from None


def _unreadable_onnx() -> tuple:
    """The ONNX Runtime errors of a file that is not a readable ONNX graph."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return state.InvalidProtobuf, state.InvalidGraph


def _open_onnx(manifest: Manifest, directory: Path, resolved: list, intra_op_threads: int | None) -> LoadedModel:
    trt_cache = {"trt_engine_cache_enable": "True", "trt_engine_cache_path": os.fspath(directory / "trt_cache")}
    encoder = OrtEngine(manifest.file("encoder"), resolved, intra_op_threads=intra_op_threads,
                        provider_options={"TensorrtExecutionProvider": trt_cache})
    decoder = OrtEngine(manifest.file("decoder"), resolved, intra_op_threads=intra_op_threads,
                        provider_options={"TensorrtExecutionProvider": {**trt_cache, **_decoder_trt_options(manifest)}})
    return LoadedModel(manifest, encoder, decoder)
