"""The downstream proof of ``python -m studies samaug --downstream``: SAMAug's test-time
rule, the plain images of the three variants, and the cache of augmented images."""

from __future__ import annotations

import numpy as np
import pytest

from samedenhancer import PriorMaps, augment
from studies import samaug


def test_the_confidence_rule_scores_each_output_scaled_to_its_range():
    """SAMAug's reference rule min-max scales each output before the mean |q - 0.5|: a two-level
    map (0.3 / 0.8) beats a faint ramp (0 .. 0.2) that the unscaled mean |p - 0.5| would prefer,
    and the kept output comes back unscaled."""
    two_level = np.where(np.arange(16).reshape(1, 1, 4, 4) < 8, 0.3, 0.8).astype(np.float32)
    faint = np.linspace(0, 0.2, 16, dtype=np.float32).reshape(1, 1, 4, 4)
    assert np.abs(faint - 0.5).mean() > np.abs(two_level - 0.5).mean()  # the unscaled rule's choice
    picked = samaug.confident(np.concatenate([two_level, faint]), np.concatenate([faint, two_level]))
    assert np.array_equal(picked[0], two_level[0])  # first image: the first output
    assert np.array_equal(picked[1], two_level[0])  # second image: the second one


def test_plain_inputs_are_the_augmented_image_without_priors():
    grey = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30)
    plain = samaug._unit_rgb(grey)
    assert plain.shape == (20, 30, 3) and plain.dtype == np.float32
    assert np.array_equal(plain[..., 0], plain[..., 2]) and plain.max() <= 1
    seg = np.ones((20, 30), np.float32)
    boosted = augment(grey, PriorMaps(seg, np.zeros_like(seg), 1, 1))
    assert np.allclose(boosted[..., 1], np.clip(plain[..., 1] + 0.2, 0, 1))
    assert np.array_equal(boosted[..., 0], plain[..., 0])


class _Counting:
    """The real predictor, counting encodes."""

    def __init__(self, predictor):
        self.inner, self.encodes = predictor, 0
        self.manifest = predictor.manifest

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, image):
        self.encodes += 1
        return self.inner.encode(image)


def test_augmented_images_are_cached_and_read_back(tmp_path):
    from samedenhancer import Predictor
    from studies import unet

    data = unet.load_shared("kvasir", 2)
    predictor = _Counting(Predictor("litemedsam"))
    first, maps = samaug._augmented_inputs("kvasir", data, predictor, tmp_path, 32, None)
    assert predictor.encodes == 2 and sorted(p.name for p in (tmp_path / "kvasir").iterdir()) == [f"{s}.npz" for s in sorted(data.stems)]
    again, _ = samaug._augmented_inputs("kvasir", data, predictor, tmp_path, 32, None)
    assert predictor.encodes == 2  # nothing encoded the second time
    for a, b, (segmentation, boundary) in zip(first, again, maps):
        assert a.shape == (32, 32, 3) and np.array_equal(a, b)
        assert segmentation.shape == boundary.shape == (32, 32) and segmentation.max() > 0
        assert np.all((a >= 0) & (a <= 1))


def test_a_unet_larger_than_the_cache_is_refused(tmp_path):
    from studies.unet import UNetConfig

    assert samaug.downstream_config() == UNetConfig()
    assert samaug.downstream_config(size=128, threads=2) == UNetConfig(size=128, threads=2)

    with pytest.raises(ValueError, match="U-Net size must be <= 128"):
        samaug.downstream("kvasir", UNetConfig(size=256), tmp_path)


def test_the_downstream_target_is_judged_on_the_means_over_the_seeds():
    from studies.unet import UNetConfig

    def run(plain, samaug_dice):  # per seed: (Dice %, HD95 px, n)
        others = [(50.0, 10.0, 9)] * len(plain)
        return {"images": 10, "seeds": [0, 1], "priors_s": 0.0, "unet_s": 1.0,
                "variants": {samaug.PLAIN: [(d, 20.0, 9) for d in plain],
                             samaug.SAMAUG: [(d, 18.0, 9) for d in samaug_dice],
                             "augmented images only (train and test)": others}}

    # one dataset gains on the mean although one seed loses; the other gains on one seed only
    text = "\n".join(samaug.format_downstream({"kvasir": run([40.0, 44.0], [45.0, 42.0]),
                                               "busi": run([60.0, 60.0], [63.0, 56.0])}, UNetConfig()))
    assert "| kvasir | 10 | SAMAug (alternating training, confidence rule at test) | 43.50 | 18.0 (9) | +1.50 | 45.00, 42.00 |" in text
    assert "kvasir +1.50 (per seed +5.00, -2.00), busi -0.50 (per seed +3.00, -4.00) -> missed (1 of 2)" in text
    assert "--seeds 0 1" in text and "seeds [0, 1]" in text

    single = {"kvasir": dict(run([40.0], [42.0]), seeds=[0]), "busi": dict(run([60.0], [61.5]), seeds=[0])}
    text = "\n".join(samaug.format_downstream(single, UNetConfig()))
    assert "kvasir +2.00, busi +1.50 -> met (2 of 2)" in text and "per seed" not in text
