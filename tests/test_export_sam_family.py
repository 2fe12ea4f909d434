"""The SAM ViT-b/l/h family without running the encoders: the static manifests, SAM's and MedSAM's
preprocessing against their own recipes, the three encoder configurations (on the meta device),
the checkpoint layouts the exporter accepts, and its errors. Encoder/decoder parity with PyTorch is
in test_export_parity.py."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from samedenhancer.engines import MODELS, Manifest, static_manifest
from samedenhancer.transforms import preprocess

SAM_MODELS = ("sam_vit_b", "sam_vit_l", "sam_vit_h", "medicosam", "medsam")


@pytest.mark.parametrize("name", SAM_MODELS)
def test_static_manifests(name):
    manifest = Manifest.from_dict(static_manifest(name))
    assert name in MODELS
    assert (manifest.raw["family"], manifest.input_size, manifest.low_res_size) == ("sam", 1024, 256)
    assert list(manifest.raw["decoder"]["inputs"]) == ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"]
    assert manifest.encoder_outputs == ("image_embeddings",)
    expected = ("box",) if name == "medsam" else ("point", "box", "mask")
    assert manifest.trained_prompts == expected
    assert manifest.raw["architecture"] == ("vit_b" if name in ("medicosam", "medsam") else name.replace("sam_", ""))


def _rgb(height, width, seed=0):
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 3)
    return cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX)


@pytest.mark.parametrize("shape", [(300, 420), (1400, 900)])
def test_sam_preprocessing_follows_segment_anything(shape):
    """SAM's recipe (``ResizeLongestSide`` with PIL bilinear, ``(x - pixel_mean) / pixel_std`` on 0..255,
    zero padding at the bottom/right after normalisation), written here with Pillow and numpy."""
    from PIL import Image

    image = _rgb(*shape)
    tensor, scale, valid = preprocess(image, Manifest.from_dict(static_manifest("sam_vit_b")))
    height, width = shape
    factor = 1024 / max(height, width)
    new_h, new_w = int(height * factor + 0.5), int(width * factor + 0.5)
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR), np.float32)
    expected = np.zeros((1024, 1024, 3), np.float32)
    expected[:new_h, :new_w] = (resized - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375]
    expected = expected.transpose(2, 0, 1)[None]
    assert tensor.shape == (1, 3, 1024, 1024) and valid == (new_h, new_w) and scale == (factor, factor)
    assert (tensor[..., new_h:, :] == 0).all() and (tensor[..., new_w:] == 0).all()
    # Interpolation kernels differ (OpenCV area/bilinear vs Pillow's antialiased bilinear); the
    # normalisation constants and the layout must not.
    assert np.abs(tensor - expected).mean() < 0.02
    assert np.abs(tensor.mean((2, 3)) - expected.mean((2, 3))).max() < 0.01


def test_medsam_preprocessing_follows_medsam():
    """MedSAM's inference recipe: stretched to 1024 x 1024 (skimage, bicubic, anti-aliased), per-image
    min-max to [0, 1], no mean/std; boxes scale by 1024 / W and 1024 / H."""
    from skimage import transform

    image = _rgb(300, 420)
    tensor, scale, valid = preprocess(image, Manifest.from_dict(static_manifest("medsam")))
    resized = transform.resize(image, (1024, 1024), order=3, preserve_range=True, anti_aliasing=True).astype(np.uint8)
    expected = (resized - resized.min()) / max(resized.max() - resized.min(), 1e-8)
    assert tensor.shape == (1, 3, 1024, 1024) and valid == (1024, 1024) and scale == (1024 / 420, 1024 / 300)
    assert tensor.min() == 0.0 and tensor.max() == 1.0
    assert np.abs(tensor[0].transpose(1, 2, 0) - expected).mean() < 0.01


def test_segment_anything_is_imported_without_torchvision(segment_anything):
    """segment-anything's package __init__ imports torchvision; the exporter builds SAM without it."""
    code = (
        "import sys; sys.modules['torchvision'] = None\n"
        "from samedenhancer.export.torch_models import build_sam\n"
        "import torch\n"
        "with torch.device('meta'):\n"
        "    model, _ = build_sam('sam_vit_b', 'vit_b')\n"
        "print(type(model).__module__, 'segment_anything' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["segment_anything.modeling.sam", "False"]


@pytest.mark.parametrize(
    "architecture,width,depth,global_blocks",
    [("vit_b", 768, 12, [2, 5, 8, 11]), ("vit_l", 1024, 24, [5, 11, 17, 23]), ("vit_h", 1280, 32, [7, 15, 23, 31])],
)
def test_encoder_configurations(segment_anything, architecture, width, depth, global_blocks):
    """The full-size encoders (built on the meta device: shapes only, no memory, no compute) have
    the widths, depths and global-attention blocks of ``segment_anything.build_sam``."""
    import torch

    from samedenhancer.export.torch_models import build_sam

    with torch.device("meta"):
        model, _ = build_sam(f"sam_{architecture}", architecture)
    state = model.state_dict()
    blocks = model.image_encoder.blocks
    assert len(blocks) == depth
    assert state["image_encoder.patch_embed.proj.weight"].shape == (width, 3, 16, 16)
    assert [i for i, block in enumerate(blocks) if block.window_size == 0] == global_blocks
    head_dim = width // (12 if architecture == "vit_b" else 16)
    assert state[f"image_encoder.blocks.{global_blocks[0]}.attn.rel_pos_h"].shape == (127, head_dim)
    assert state["image_encoder.blocks.0.attn.rel_pos_h"].shape == (27, head_dim)
    assert state["mask_decoder.iou_token.weight"].shape == (1, 256)
    assert state["prompt_encoder.mask_downscaling.0.weight"].shape == (4, 1, 2, 2)


@pytest.fixture(scope="module")
def vit_b_state(segment_anything, tmp_path_factory):
    import torch

    from samedenhancer.export.torch_models import build_sam

    model, _ = build_sam("sam_vit_b", "vit_b", seed=3)
    return {k: v.clone() for k, v in model.state_dict().items()}, tmp_path_factory.mktemp("checkpoints"), torch


@pytest.mark.parametrize("layout", ["plain", "model", "state_dict", "micro_sam"])
def test_checkpoint_layouts_are_accepted(vit_b_state, layout):
    """SAM / MedSAM / MedicoSAM state dicts, the same under "model" / "state_dict", and a torch_em
    (micro-sam trainer) file: "model_state" with "sam."-prefixed names beside optimizer state. The
    micro-sam file is also loaded into the model end to end."""
    state, folder, torch = vit_b_state
    from samedenhancer.export.torch_models import _state_dict, build_sam

    content = {
        "plain": state,
        "model": {"model": state},
        "state_dict": {"state_dict": state, "epoch": 4},
        "micro_sam": {"model_state": {f"sam.{k}": v for k, v in state.items()}, "optimizer_state": {"state": {}, "param_groups": []},
                      "iteration": 100, "best_metric": 0.25},
    }[layout]
    path = folder / f"{layout}.pth"
    torch.save(content, path)
    read = _state_dict(path)
    assert read.keys() == state.keys()
    assert all(torch.equal(read[k], state[k]) for k in state)
    if layout == "micro_sam":
        model, source = build_sam("medicosam", "vit_b", checkpoint=path)
        assert source == path
        loaded = model.state_dict()
        assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_checkpoint_of_another_architecture_is_rejected(vit_b_state):
    state, folder, torch = vit_b_state
    from samedenhancer.export.torch_models import build_sam

    path = folder / "vit_b_half.pth"
    torch.save({k: v for k, v in state.items() if not k.startswith("mask_decoder.")}, path)
    with pytest.raises(ValueError, match="does not match the sam_vit_b config: .* missing keys: mask_decoder"):
        build_sam("sam_vit_b", "vit_b", checkpoint=path)


def test_checkpoint_with_python_objects_is_refused(vit_b_state):
    _, folder, torch = vit_b_state
    from samedenhancer.export.torch_models import build_sam

    path = folder / "pickled.pth"
    torch.save({"model_state": {}, "init": {"loss": subprocess.CompletedProcess(["x"], 0)}}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        build_sam("medicosam", "vit_b", checkpoint=path)


@pytest.mark.parametrize("name", SAM_MODELS)
def test_export_needs_a_checkpoint(name):
    pytest.importorskip("torch")
    from samedenhancer.export import export

    with pytest.raises(ValueError, match=f"model '{name}' needs checkpoint= .*ViT-B|model '{name}' needs checkpoint= .*ViT-[LH]"):
        export(name)
