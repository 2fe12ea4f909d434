"""The U-Net harness of ``python -m studies unet``: out-of-fold maps for every image,
written as <stem>.png at native size, byte-identical across runs (seeded, deterministic torch)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("torch", reason="the U-Net bench needs torch (the export extra)")

from samedenhancer import io
from studies import unet

TINY = ["--epochs", "1", "--folds", "2", "--size", "16", "--depth", "2", "--width", "4", "--batch-size", "2"]


def _folders(tmp_path, classes=1, count=6):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        h, w = 30 + 2 * i, 40 - i
        label = np.zeros((h, w), np.uint8)
        for c in range(1, classes + 1):
            y, x = rng.integers(2, h - 10), rng.integers(2, w - 10)
            label[y:y + 8, x:x + 8] = c
        image = (40 + 60 * label + rng.integers(0, 30, (h, w))).astype(np.uint8)
        io.write_mask(images / f"case{i}.png", image)
        io.write_mask(masks / f"case{i}.png", (label * 255).astype(np.uint8) if classes == 1 else label)
    return images, masks


def test_every_image_gets_a_native_size_map_and_two_runs_are_byte_identical(tmp_path, capsys):
    images, masks = _folders(tmp_path)
    outs = [tmp_path / "run1", tmp_path / "run2"]
    for out in outs:
        assert unet.main(["--images", str(images), "--masks", str(masks), "--out", str(out)] + TINY) == 0
    assert "mean Dice" in capsys.readouterr().out
    stems = sorted(p.stem for p in masks.iterdir())
    assert sorted(p.stem for p in outs[0].glob("*.png")) == stems
    for stem in stems:
        first = (outs[0] / f"{stem}.png").read_bytes()
        assert first == (outs[1] / f"{stem}.png").read_bytes()
        written = io.read_mask(outs[0] / f"{stem}.png")
        assert written.dtype == np.uint8 and written.shape == io.read_mask(masks / f"{stem}.png").shape
    assert not [p for p in outs[0].iterdir() if p.name.startswith(".")]


def test_multi_class_masks_give_label_maps(tmp_path):
    images, masks = _folders(tmp_path, classes=2)
    out = tmp_path / "out"
    assert unet.main(["--images", str(images), "--masks", str(masks), "--out", str(out)] + TINY) == 0
    maps = [io.read_mask(p) for p in sorted(out.glob("*.png"))]
    assert len(maps) == 6 and max(int(m.max()) for m in maps) <= 2


def test_folds_keep_groups_together_and_cover_every_image():
    groups = ["p1", "p1", "p2", "p3", "p3", "p3", "p4", "p5"]
    fold = unet.folds_of(groups, 3, seed=1)
    assert set(fold.tolist()) == {0, 1, 2}
    for g in set(groups):
        assert len({f for f, h in zip(fold, groups) if h == g}) == 1
    assert np.array_equal(fold, unet.folds_of(groups, 3, seed=1))
    with pytest.raises(ValueError, match="folds must be <= the number of groups"):
        unet.folds_of(groups, 6, seed=0)


def test_train_inputs_replace_the_training_folds_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    config = unet.UNetConfig(size=8, width=2, depth=2, epochs=1, folds=2, batch_size=2)
    plain = unet.cross_validate(x, y, ["a", "b", "c", "d"], 1, config)
    assert plain.shape == (4, 1, 8, 8) and np.all((plain >= 0) & (plain <= 1))
    other = unet.cross_validate(x, y, ["a", "b", "c", "d"], 1, config, train_inputs=-x)
    assert not np.array_equal(plain, other)
    with pytest.raises(ValueError, match="train_inputs must have the shape"):
        unet.cross_validate(x, y, ["a", "b", "c", "d"], 1, config, train_inputs=x[:, :, :4])


def test_alternated_training_and_several_predicted_forms():
    """SAMAug's recipe: every batch steps on each form of the images in turn; each form given as
    inputs is predicted by the same fold models."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    groups = ["a", "b", "c", "d"]
    config = unet.UNetConfig(size=8, width=2, depth=2, epochs=2, folds=2, batch_size=2)
    plain = unet.cross_validate(x, y, groups, 1, config)
    alternated, flipped = unet.cross_validate((x, -x), y, groups, 1, config, train_inputs=(x, -x))
    assert alternated.shape == flipped.shape == plain.shape
    assert not np.array_equal(alternated, plain)  # training saw -x
    assert not np.array_equal(alternated, flipped)  # two forms, two predictions of one model
    # the forms alternate batch by batch, not epoch by epoch: even one epoch sees the second form
    one = unet.UNetConfig(size=8, width=2, depth=2, epochs=1, folds=2, batch_size=2)
    assert not np.array_equal(unet.cross_validate(x, y, groups, 1, one, train_inputs=(x, -x)),
                              unet.cross_validate(x, y, groups, 1, one))
    # and in the order given: the first form's step comes first
    assert not np.array_equal(unet.cross_validate(x, y, groups, 1, one, train_inputs=(x, -x)),
                              unet.cross_validate(x, y, groups, 1, one, train_inputs=(-x, x)))
    with pytest.raises(ValueError, match="train_inputs must have the shape"):
        unet.cross_validate((x, x[:, :, :4]), y, groups, 1, config)


def test_augmented_training_is_seeded_and_warps_labels_with_their_images(tmp_path):
    """``augment``: two runs write identical maps, the warps change the training, and a warped label
    map keeps its label values, moved where its image moved."""
    import torch

    images, masks = _folders(tmp_path, classes=2)
    outs = [tmp_path / name for name in ("aug1", "aug2", "plain")]
    for out, extra in zip(outs, (["--augment"], ["--augment"], [])):
        assert unet.main(["--images", str(images), "--masks", str(masks), "--out", str(out)] + TINY + extra) == 0
    stems = sorted(p.name for p in outs[0].glob("*.png"))
    assert all((outs[0] / n).read_bytes() == (outs[1] / n).read_bytes() for n in stems)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 1, 16, 16)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    config = unet.UNetConfig(size=16, width=2, depth=2, epochs=2, folds=2, batch_size=3)
    augmented = dataclasses.replace(config, augment=True)
    groups = list("abcdef")
    assert not np.array_equal(unet.cross_validate(x, y, groups, 1, config),
                              unet.cross_validate(x, y, groups, 1, augmented))
    theta, contrast = unet._random_warp(torch, 4, torch.Generator().manual_seed(0))
    assert theta.shape == (4, 2, 3) and contrast.shape == (4, 1, 1, 1)
    assert torch.all((contrast >= np.exp(-0.3) - 1e-6) & (contrast <= np.exp(0.3) + 1e-6))
    labels = torch.zeros(4, 1, 16, 16)
    labels[:, :, 4:12, 4:12] = 2
    warped = unet._warped(torch, labels, theta, "nearest")
    assert set(torch.unique(warped).tolist()) <= {0.0, 2.0} and not torch.equal(warped, labels)
    identity = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]).repeat(4, 1, 1)
    assert torch.equal(unet._warped(torch, labels, identity, "nearest"), labels)
    moved = unet._warped(torch, labels * 10, theta, "bilinear") > 10  # the image, warped the same way
    assert (moved != (warped > 1)).float().mean() < 0.05


def test_each_shared_set_gets_its_schedule():
    assert unet.config_for("kvasir") == unet.config_for(None) == unet.UNetConfig()
    acdc = unet.config_for("acdc")
    assert acdc.augment and acdc.epochs == unet.SCHEDULES["acdc"]["epochs"] and acdc.size == unet.UNetConfig().size
    assert unet.config_for("acdc", epochs=3, size=None).epochs == 3  # overrides win, None keeps the schedule
    with pytest.raises(ValueError, match="augment must be True or False"):
        unet.UNetConfig(augment=1)


def test_bad_configuration_and_arguments_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="UNetConfig epochs must be an integer >= 1"):
        unet.UNetConfig(epochs=0)
    with pytest.raises(ValueError, match="divisible by 2"):
        unet.UNetConfig(size=20, depth=4)
    assert unet.main(["--images", str(tmp_path)]) == 2
    assert "--images, --masks and --out are required" in capsys.readouterr().err


def test_labels_of_reads_binary_encodings_and_label_maps():
    assert unet.labels_of(np.array([[0, 255], [250, 3]], np.uint8)).tolist() == [[0, 1], [1, 0]]
    assert unet.labels_of(np.array([[0, 1], [2, 3]], np.uint8)).tolist() == [[0, 1], [2, 3]]
