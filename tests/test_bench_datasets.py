import numpy as np
import pytest

from samedenhancer import io
from samedenhancer.bench import datasets


@pytest.mark.parametrize("name", datasets.DATASETS)
def test_every_sample_reads_with_matching_sizes(data_root, name):
    items = datasets.samples(name, data_root)
    assert len(items) > 50
    for sample in items[:: max(1, len(items) // 5)]:
        image, truth = sample.image(), sample.ground_truth()
        assert image.shape[:2] == truth.shape
        assert truth.dtype == np.uint8
        for segmenter in datasets.SEGMENTERS.get(name, ()):
            assert sample.coarse(segmenter).shape == truth.shape


def test_cvc_images_are_colour(data_root):
    image = datasets.samples("cvc_clinicdb", data_root)[0].image()
    assert image.ndim == 3 and image.shape[2] == 3
    assert not np.array_equal(image[..., 0], image[..., 1])


def test_broken_files_raise_clear_errors(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        io.read_image(empty)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    with pytest.raises(ValueError, match="cannot read"):
        io.read_image(truncated)
    with pytest.raises(FileNotFoundError):
        io.read_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="unsupported suffix"):
        io.read_image(tmp_path / "x.gif")


def test_write_mask_round_trips_and_leaves_no_temporary(tmp_path):
    mask = np.arange(12, dtype=np.uint16).reshape(3, 4)
    for name in ("m.png", "m.npy", "m.tif"):
        out = io.write_mask(tmp_path / name, mask)
        assert np.array_equal(io.read_mask(out), mask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npy", "m.png", "m.tif"]
