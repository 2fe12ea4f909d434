"""``python -m studies unet``: a small, deterministic 2-D U-Net trained here, k-fold, so
that every image of a dataset gets an out-of-fold probability map — the paper's *weak* segmenter.

The U-Net (Ronneberger et al., 2015, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI, doi:10.1007/978-3-319-24574-4_28) is shrunk to fit a shared 2-core CPU:
inputs resized to ``size`` x ``size`` px (aspect ratio not kept), ``depth`` levels starting at
``width`` channels, batch norm, Adam, Dice + cross-entropy, random horizontal flips (and, with
``augment``, random affine warps and contrast). Training is
seeded and runs with ``torch.use_deterministic_algorithms(True)`` and a fixed thread count, so two
runs on one machine write byte-identical maps.

Outputs, per image ``<stem>.png`` at the image's native size:
- binary targets: the foreground probability as 8-bit (``round(255 * p)``; threshold at 127 for
  the mask), the encoding of ``../shared/data/*/coarse/<segmenter>/``;
- multi-class targets (ACDC): the argmax label map (0 = background, 1..K), 8-bit.

torch is a bench dependency only (the ``export`` extra brings it); nothing on the runtime's import
path imports this module.

The harness is built to be reused with other inputs (SAMAug priors, augmented images):
:func:`cross_validate` takes any N x C x S x S float array, so extra input channels are stacked by
the caller; ``train_inputs`` gives the training folds different inputs than the ones predicted.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from samedenhancer import io

#: Where the shortcuts cache their maps (never ../shared): ``<cache>/coarse/<dataset>/unet/``.
SEGMENTER = "unet"


@dataclass(frozen=True)
class UNetConfig:
    """Size and training schedule of the U-Net (the defaults are the benchmark's)."""

    size: int = 64
    width: int = 8
    depth: int = 4
    epochs: int = 15
    batch_size: int = 8
    lr: float = 3e-3
    folds: int = 5
    seed: int = 0
    threads: int = 1
    #: Per training image and step, besides the flip: rotation U(-20, 20) degrees, scale
    #: U(0.8, 1.2), shift U(-10, 10) % of the side, contrast x exp(U(-0.3, 0.3)).
    augment: bool = False

    def __post_init__(self) -> None:
        for name in ("size", "width", "depth", "epochs", "batch_size", "folds", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"UNetConfig {name} must be an integer >= 1, got {value!r}")
        if self.size % (2 ** (self.depth - 1)):
            raise ValueError(f"UNetConfig size must be divisible by 2**(depth-1) = {2 ** (self.depth - 1)}, got {self.size}")
        if not self.lr > 0:
            raise ValueError(f"UNetConfig lr must be > 0, got {self.lr!r}")
        if not isinstance(self.augment, bool):
            raise ValueError(f"UNetConfig augment must be True or False, got {self.augment!r}")


#: Per shared set, what its U-Net changes from :class:`UNetConfig`'s defaults. ACDC: with 15
#: epochs and flips only, the 4 training patients of a fold give a U-Net that fits them (train
#: Dice > 0.9 after 100 epochs) but predicts background on 78 of 102 held-out slices (Dice 13 %);
#: 100 epochs with affine and contrast augmentation make it weak instead of broken.
SCHEDULES = {"acdc": {"epochs": 100, "augment": True}}


def config_for(dataset: str | None = None, **overrides) -> UNetConfig:
    """The benchmark's U-Net for a shared set (:data:`SCHEDULES`; other data: the defaults), with
    ``overrides`` (``None`` values ignored) on top."""
    settings = {**SCHEDULES.get(dataset or "", {}), **{k: v for k, v in overrides.items() if v is not None}}
    return dataclasses.replace(UNetConfig(), **settings)


@dataclass(frozen=True)
class Dataset:
    """Images and label maps matched by stem, at native resolution, with a group per image (the
    patient, for folds that never split one)."""

    stems: tuple[str, ...]
    images: tuple[np.ndarray, ...]
    labels: tuple[np.ndarray, ...]
    groups: tuple[str, ...]

    @property
    def classes(self) -> int:
        """Number of foreground classes (1 for a binary task)."""
        return max(1, max(int(label.max()) for label in self.labels))


# -- data -----------------------------------------------------------------------------------
def labels_of(mask: np.ndarray) -> np.ndarray:
    """A stored mask as labels: values above 127 mark a binary mask's foreground (0/255 encodings,
    JPEG masks), otherwise the values are class labels (0/1, 0..K)."""
    mask = mask[..., 0] if mask.ndim == 3 else mask
    if mask.max() > 127:
        return (mask > 127).astype(np.uint8)
    return mask.astype(np.uint8)


def load_folder(images: str | Path, masks: str | Path) -> Dataset:
    """The image/mask pairs of two folders, matched by stem (stems missing in either are skipped)."""
    image_files, mask_files = io.files_by_stem(Path(images)), io.files_by_stem(Path(masks))
    stems = sorted(set(image_files) & set(mask_files))
    if not stems:
        raise ValueError(f"images and masks must share stems, got none in common in {images} and {masks}")
    pictures = tuple(io.read_image(image_files[s]) for s in stems)
    labels = tuple(labels_of(io.read_mask(mask_files[s])) for s in stems)
    return Dataset(tuple(stems), pictures, labels, tuple(stems))


def load_shared(dataset: str, limit: int | None = None) -> Dataset:
    """One of the shared sets (:mod:`samedenhancer.bench.datasets`); ACDC slices are grouped by patient."""
    from samedenhancer.bench import datasets

    items = datasets.samples(dataset)[:limit]
    groups = tuple(s.stem.split("_")[0] if dataset == "acdc" else s.stem for s in items)
    return Dataset(tuple(s.stem for s in items), tuple(s.image() for s in items),
                   tuple(s.ground_truth() for s in items), groups)


def as_input(image: np.ndarray, size: int) -> np.ndarray:
    """An image as a C x size x size float32 network input (grey: C = 1, RGB: C = 3), resized with
    area averaging and standardised per image."""
    image = np.asarray(image)
    array = cv2.resize(image.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    array = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    return ((array - array.mean()) / (array.std() + 1e-6)).astype(np.float32)


def as_target(label: np.ndarray, size: int) -> np.ndarray:
    """A label map resized (nearest) to size x size, int64."""
    return cv2.resize(label.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST).astype(np.int64)


def stack_inputs(images: Sequence[np.ndarray], size: int) -> np.ndarray:
    """N x C x size x size float32 inputs; grey and RGB images are not mixed in one set."""
    arrays = [as_input(image, size) for image in images]
    channels = {a.shape[0] for a in arrays}
    if len(channels) != 1:
        raise ValueError(f"images must all be grey or all be RGB, got channel counts {sorted(channels)}")
    return np.stack(arrays)


def folds_of(groups: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Fold index per image: the groups shuffled with ``seed`` and dealt round-robin, so one group
    (patient) never spans two folds."""
    unique = sorted(set(groups))
    if len(unique) < folds:
        raise ValueError(f"folds must be <= the number of groups ({len(unique)}), got {folds}")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of_group = {unique[g]: i % folds for i, g in enumerate(order)}
    return np.array([fold_of_group[g] for g in groups], np.int64)


# -- model ----------------------------------------------------------------------------------
def _torch(threads: int):
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    return torch


def build_unet(in_channels: int, out_channels: int, width: int, depth: int):
    """The U-Net: ``depth`` levels of two 3x3 conv + BN + ReLU, max-pool down, transposed conv up,
    skip connections by concatenation, a 1x1 head with ``out_channels`` logits."""
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            widths = [width * 2**i for i in range(depth)]
            self.down = nn.ModuleList([block(in_channels, widths[0])] + [block(a, b) for a, b in zip(widths, widths[1:])])
            self.up = nn.ModuleList([nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(widths, widths[1:])])
            self.merge = nn.ModuleList([block(2 * a, a) for a in widths[:-1]])
            self.head = nn.Conv2d(widths[0], out_channels, 1)

        def forward(self, x):
            skips = []
            for i, down in enumerate(self.down):
                x = down(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            for i in reversed(range(len(self.up))):
                x = self.merge[i](torch.cat([skips[i], self.up[i](x)], dim=1))
            return self.head(x)

    return UNet()


def _loss(torch, logits, target, classes: int):
    """Cross-entropy + soft Dice (binary: BCE on one logit; multi-class: softmax over K + 1)."""
    F = torch.nn.functional
    if classes == 1:
        t = target.float()[:, None]
        p = torch.sigmoid(logits)
        ce = F.binary_cross_entropy_with_logits(logits, t)
        inter, total = (p * t).sum(dim=(1, 2, 3)), (p + t).sum(dim=(1, 2, 3))
    else:
        t = F.one_hot(target, classes + 1).permute(0, 3, 1, 2).float()[:, 1:]
        p = torch.softmax(logits, dim=1)[:, 1:]
        ce = F.cross_entropy(logits, target)
        inter, total = (p * t).sum(dim=(2, 3)), (p + t).sum(dim=(2, 3))
    return ce + (1 - (2 * inter + 1) / (total + 1)).mean()


def train(inputs, targets: np.ndarray, classes: int, config: UNetConfig, seed: int):
    """A U-Net trained on ``inputs`` (N x C x S x S float32) and ``targets`` (N x S x S labels).

    ``inputs`` may be a tuple of such arrays (the same images in different forms): every batch then
    takes one optimiser step on each form in turn, with the same images and flips (SAMAug's recipe:
    its reference training loop steps on the plain batch, then on the augmented one). Batch norm's
    running statistics thus see every form to the end of training.
    """
    variants = inputs if isinstance(inputs, tuple) else (inputs,)
    if len({v.shape for v in variants}) != 1:
        raise ValueError(f"alternated training inputs must share one shape, got {[v.shape for v in variants]}")
    inputs = variants[0]
    torch = _torch(config.threads)
    torch.manual_seed(seed)
    model = build_unet(inputs.shape[1], 1 if classes == 1 else classes + 1, config.width, config.depth)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps = config.epochs * max(1, -(-len(inputs) // config.batch_size)) * len(variants)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=steps)
    x_variants, y_all = [torch.from_numpy(v) for v in variants], torch.from_numpy(targets)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), config.batch_size):
            index = order[start:start + config.batch_size]
            if len(index) < 2 and len(inputs) >= 2:  # batch norm needs two samples
                continue
            flip = torch.rand(len(index), generator=generator) < 0.5
            y = torch.where(flip[:, None, None], y_all[index].flip(-1), y_all[index])
            warp = _random_warp(torch, len(index), generator) if config.augment else None
            if warp is not None:
                y = _warped(torch, y[:, None].float(), warp[0], "nearest")[:, 0].long()
            for x_all in x_variants:
                x = torch.where(flip[:, None, None, None], x_all[index].flip(-1), x_all[index])
                if warp is not None:
                    x = _warped(torch, x, warp[0], "bilinear") * warp[1]
                optimiser.zero_grad()
                _loss(torch, model(x), y, classes).backward()
                optimiser.step()
                schedule.step()
    model.eval()
    return model


def _random_warp(torch, n: int, generator):
    """``n`` random affine matrices (N x 2 x 3, in grid_sample's [-1, 1] coordinates) and contrast
    factors (N x 1 x 1 x 1), as :attr:`UNetConfig.augment` describes."""
    def uniform(*shape):
        return torch.rand(*shape, generator=generator) * 2 - 1

    angle, scale, shift = uniform(n) * math.radians(20), 1 + 0.2 * uniform(n), 0.2 * uniform(n, 2)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    return theta, torch.exp(0.3 * uniform(n))[:, None, None, None]


def _warped(torch, batch, theta, mode: str):
    """``batch`` (N x C x S x S) resampled by ``theta``; outside the image: the border's values for
    images, background (0) for labels."""
    F = torch.nn.functional
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    padding = "zeros" if mode == "nearest" else "border"
    return F.grid_sample(batch, grid, mode=mode, padding_mode=padding, align_corners=False)


def predict(model, inputs: np.ndarray, classes: int, threads: int = 1) -> np.ndarray:
    """Probabilities N x K' x S x S float32 (K' = 1 foreground map for a binary task, else K + 1
    softmax channels including the background)."""
    torch = _torch(threads)
    out = []
    with torch.no_grad():
        for start in range(0, len(inputs), 16):
            logits = model(torch.from_numpy(inputs[start:start + 16]))
            out.append((torch.sigmoid(logits) if classes == 1 else torch.softmax(logits, dim=1)).numpy())
    return np.concatenate(out).astype(np.float32)


def cross_validate(inputs, targets: np.ndarray, groups: Sequence[str], classes: int,
                   config: UNetConfig, *, train_inputs=None, log=None):
    """Out-of-fold probabilities for every image (N x K' x S x S): fold ``f``'s model, trained on
    the other folds (seed ``config.seed + f``), predicts fold ``f``.

    ``inputs`` may be a tuple of arrays (the same images in several forms): each is predicted by
    the fold's model and a tuple of probabilities comes back. ``train_inputs`` (an array or a tuple
    of arrays alternated batch by batch, see :func:`train`; each of the inputs' shape) replaces the
    inputs of the training folds, for training on augmented images while predicting plain ones (or
    the other way round); by default the (first) inputs.
    """
    tested = inputs if isinstance(inputs, tuple) else (inputs,)
    fold = folds_of(groups, config.folds, config.seed)
    train_x = tested[0] if train_inputs is None else train_inputs
    for array in (train_x if isinstance(train_x, tuple) else (train_x,)) + tested:
        if array.shape != tested[0].shape:
            raise ValueError(f"train_inputs must have the shape of inputs {tested[0].shape}, got {array.shape}")
    shape = (len(tested[0]), 1 if classes == 1 else classes + 1) + tested[0].shape[2:]
    probabilities = tuple(np.zeros(shape, np.float32) for _ in tested)
    for f in range(config.folds):
        start = time.perf_counter()
        held = fold == f
        fold_train = tuple(x[~held] for x in train_x) if isinstance(train_x, tuple) else train_x[~held]
        model = train(fold_train, targets[~held], classes, config, seed=config.seed + f)
        for out, x in zip(probabilities, tested):
            out[held] = predict(model, x[held], classes, config.threads)
        if log:
            log(f"fold {f + 1}/{config.folds}: {int((~held).sum())} train, {int(held.sum())} test, "
                f"{time.perf_counter() - start:.0f} s")
    return probabilities if isinstance(inputs, tuple) else probabilities[0]


def to_native(probability: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """One image's probabilities (K' x S x S) as the stored map at native ``shape``: 8-bit
    probability for a binary task, the argmax label map otherwise."""
    resized = [cv2.resize(channel, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR) for channel in probability]
    if len(resized) == 1:
        return np.round(255 * np.clip(resized[0], 0, 1)).astype(np.uint8)
    return np.argmax(np.stack(resized), axis=0).astype(np.uint8)


def coarse_maps(data: Dataset, config: UNetConfig, log=None) -> list[np.ndarray]:
    """Out-of-fold U-Net maps of a dataset at native resolution (see :func:`to_native`)."""
    inputs = stack_inputs(data.images, config.size)
    targets = np.stack([as_target(label, config.size) for label in data.labels])
    probabilities = cross_validate(inputs, targets, data.groups, data.classes, config, log=log)
    return [to_native(p, label.shape) for p, label in zip(probabilities, data.labels)]


def write_maps(out: str | Path, stems: Sequence[str], maps: Sequence[np.ndarray]) -> list[Path]:
    """``<out>/<stem>.png`` per map, each written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return [io.write_mask(out / f"{stem}.png", m) for stem, m in zip(stems, maps)]


def cache_dir(dataset: str) -> Path:
    """``<model cache>/coarse/<dataset>/unet`` (``$SAMEDENHANCER_CACHE`` or ``~/.cache/samedenhancer``)."""
    from samedenhancer.engines import cache_dir as model_cache

    return model_cache() / "coarse" / dataset / SEGMENTER


def cached_maps(dataset: str, config: UNetConfig | None = None, log=None) -> dict[str, np.ndarray]:
    """The U-Net maps of a shared set, from the cache when complete and made with the same
    configuration (``config.txt`` beside the maps), else trained and written there."""
    config = config or config_for(dataset)
    data = load_shared(dataset)
    folder = cache_dir(dataset)
    stamp = folder / "config.txt"
    if stamp.is_file() and stamp.read_text() == repr(config) and all((folder / f"{s}.png").is_file() for s in data.stems):
        return {s: io.read_mask(folder / f"{s}.png") for s in data.stems}
    maps = coarse_maps(data, config, log=log)
    write_maps(folder, data.stems, maps)
    _stamp(folder, config)
    return dict(zip(data.stems, maps))


def _stamp(folder: Path, config: UNetConfig) -> None:
    """Record the configuration that made the maps of ``folder`` (read by :func:`cached_maps`)."""
    io.write_atomically(folder / "config.txt", ".txt", lambda tmp: Path(tmp).write_text(repr(config)))


def main(argv: list[str] | None = None) -> int:
    from samedenhancer.metrics import label_scores
    from samedenhancer.bench import datasets

    parser = argparse.ArgumentParser(prog="python -m studies unet", description=__doc__.split("\n")[0])
    parser.add_argument("--images", help="image folder (matched to --masks by stem)")
    parser.add_argument("--masks", help="mask folder (0/255 or 0/1 binary masks, or 0..K label maps)")
    parser.add_argument("--out", help="output folder for <stem>.png (default for --dataset: the cache)")
    parser.add_argument("--dataset", choices=datasets.DATASETS, help="a shared set instead of --images/--masks")
    parser.add_argument("--limit", type=int, default=None, help="first N images of --dataset")
    defaults = UNetConfig()
    for name in ("size", "width", "depth", "epochs", "batch_size", "folds", "seed", "threads"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                            help=f"default {getattr(defaults, name)} (a shared set: its schedule)")
    parser.add_argument("--lr", type=float, default=None, help=f"default {defaults.lr}")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="random affine warps and contrast in training (default off; ACDC: on)")
    parser.add_argument("--json", action="store_true", help="accepted for symmetry; prints text")
    args = parser.parse_args(argv)
    try:
        config = config_for(args.dataset, **{k: getattr(args, k) for k in ("size", "width", "depth", "epochs",
                                                                           "batch_size", "lr", "folds", "seed",
                                                                           "threads", "augment")})
        if args.dataset:
            if args.images or args.masks:
                raise ValueError("give either --dataset or --images and --masks, not both")
            data = load_shared(args.dataset, args.limit)
            out = Path(args.out) if args.out else cache_dir(args.dataset)
        else:
            if not (args.images and args.masks and args.out):
                raise ValueError("--images, --masks and --out are required without --dataset")
            data = load_folder(args.images, args.masks)
            out = Path(args.out)
        start = time.perf_counter()
        maps = coarse_maps(data, config, log=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, FileNotFoundError) as error:
        print(f"bench unet: {error}", file=sys.stderr)
        return 2
    write_maps(out, data.stems, maps)
    if args.dataset and out == cache_dir(args.dataset) and args.limit is None:
        _stamp(out, config)
    minutes = (time.perf_counter() - start) / 60
    labels = [m if data.classes > 1 else (m > 127).astype(np.uint8) for m in maps]
    dice = np.mean([label_scores(m, t)[0] for m, t in zip(labels, data.labels)])
    print(f"U-Net {config}: {len(maps)} out-of-fold maps in {out}; mean Dice {100 * dice:.2f} %; {minutes:.1f} min")
    return 0
