"""The embedding store through the Predictor on the real LiteMedSAM and real Kvasir images: a hit
gives the bytes the encoder gives, the Enhancer's masks do not change with the store, a volume is
stored slice by slice, a ready predictor gets a store without loading its engines again, and two
processes encoding into one store write the bytes one process writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from samedenhancer import EmbeddingStore, Enhancer, Predictor
from samedenhancer.bench import datasets
from samedenhancer.predictor import as_predictor

from fakes import DoublePredictor


@pytest.fixture(scope="module")
def predictor(litemedsam_dir):
    return Predictor(litemedsam_dir)


@pytest.fixture(scope="module")
def kvasir(data_root):
    """Three real Kvasir images with their PraNet maps, shrunk to 200 px wide (the encoder input is
    256 px whatever the size; the rest of the pipeline is quicker)."""
    pairs = []
    for sample in datasets.samples("kvasir", data_root)[:3]:
        image, coarse = sample.image(), sample.coarse("pranet")
        size = (200, round(200 * image.shape[0] / image.shape[1]))
        pairs.append((cv2.resize(image, size, interpolation=cv2.INTER_AREA),
                      cv2.resize(coarse, size, interpolation=cv2.INTER_AREA)))
    return pairs


def test_a_hit_gives_the_encoders_bytes_and_the_same_prediction(predictor, kvasir, tmp_path):
    store = EmbeddingStore(tmp_path / "store")
    stored = predictor.with_embeddings(store)
    image = kvasir[0][0]
    plain = predictor.encode(image)
    first, second = stored.encode(image), stored.encode(image)
    assert store.stats.misses == 1 and store.stats.hits == 1 and len(store) == 1
    for a, b, c in zip(plain.features, first.features, second.features):
        assert a.tobytes() == b.tobytes() == c.tobytes()
    assert (second.original_size, second.scale, second.valid_size) == (plain.original_size, plain.scale, plain.valid_size)
    stored.set_image(image)  # a hit
    box = [40, 30, 150, 120]
    assert np.array_equal(stored.predict(box=box).low_res_logits, predictor.decode(plain, box=box)[0])


def test_the_key_follows_the_models_files_and_preprocessing_not_its_folder(predictor, kvasir, tmp_path):
    store = EmbeddingStore(tmp_path / "store")
    image = kvasir[2][0]
    predictor.with_embeddings(store).encode(image)
    moved = tmp_path / "moved-export"
    shutil.copytree(predictor.manifest.directory, moved)
    manifest = json.loads((moved / "manifest.json").read_text())
    (moved / "manifest.json").write_text(json.dumps({**manifest, "description": "the same files elsewhere"}))
    Predictor(moved, embeddings=store).encode(image)
    assert (store.stats.misses, store.stats.hits) == (1, 1)
    # another preprocessing section (here one that gives the same model input): never the first entry
    preprocess = {**manifest["preprocess"], "channels": "grey replicated to 3, described anew"}
    (moved / "manifest.json").write_text(json.dumps({**manifest, "preprocess": preprocess}))
    Predictor(moved, embeddings=store).encode(image)
    assert store.stats.misses == 2 and len(store) == 2


def test_a_ready_predictor_gets_a_store_on_the_same_engines(predictor, tmp_path):
    store = EmbeddingStore(tmp_path / "store")
    twin = as_predictor(predictor, embeddings=store)
    assert twin is not predictor and twin.embeddings is store and predictor.embeddings is None
    assert twin._model is predictor._model  # the engines are shared, not loaded again
    assert as_predictor(predictor) is predictor
    assert predictor.with_embeddings(None).embeddings is None
    by_name = as_predictor(os.fspath(predictor.manifest.directory), embeddings=store)
    assert isinstance(by_name, Predictor) and by_name.embeddings is store
    with pytest.raises(TypeError, match="embeddings= needs a samedenhancer Predictor"):
        as_predictor(DoublePredictor(), embeddings=store)
    with pytest.raises(TypeError, match="embeddings must be a samedenhancer.EmbeddingStore"):
        predictor.with_embeddings(os.fspath(tmp_path / "store"))


def test_the_enhancer_gives_the_same_masks_with_the_store_and_encodes_once(predictor, kvasir, tmp_path):
    store = EmbeddingStore(tmp_path / "store")
    plain, stored = Enhancer(predictor, threshold=127), Enhancer(predictor.with_embeddings(store), threshold=127)
    pairs = kvasir[:2]
    expected = [plain.enhance(image, coarse).mask for image, coarse in pairs]
    first = [stored.enhance(image, coarse).mask for image, coarse in pairs]
    second = [stored.enhance(image, coarse).mask for image, coarse in pairs]
    assert store.stats.misses == len(pairs) and store.stats.hits == len(pairs)
    for a, b, c in zip(expected, first, second):
        assert a.dtype == b.dtype == c.dtype and a.tobytes() == b.tobytes() == c.tobytes()


def test_fp16_entries_hold_rounded_embeddings_in_half_the_bytes(predictor, kvasir, tmp_path):
    full, half = EmbeddingStore(tmp_path / "full"), EmbeddingStore(tmp_path / "half", fp16=True)
    image = kvasir[1][0]
    exact = predictor.with_embeddings(full).encode(image).features[0]
    rounded = predictor.with_embeddings(half).encode(image).features[0]
    again = predictor.with_embeddings(half).encode(image).features[0]
    assert rounded.tobytes() == again.tobytes() == exact.astype(np.float16).astype(np.float32).tobytes()
    assert half.size_bytes() < 0.51 * full.size_bytes()


def test_a_volume_is_stored_slice_by_slice(predictor, tmp_path):
    volume = np.zeros((96, 96, 3), np.uint8)
    coarse = np.zeros((96, 96, 3), np.uint8)
    for z in range(3):
        volume[20 + 5 * z : 60 + 5 * z, 25:70, z] = 180
        coarse[22 + 5 * z : 58 + 5 * z, 27:66, z] = 1
    store = EmbeddingStore(tmp_path / "store")
    enhancer = Enhancer(predictor.with_embeddings(store))
    first = enhancer.enhance_volume(volume, coarse).mask
    assert len(store) == 3 and store.stats.misses == 3
    second = enhancer.enhance_volume(volume, coarse).mask
    assert store.stats.hits == 3 and np.array_equal(first, second)


ENCODE_INTO = """
import sys
import numpy as np
from samedenhancer import EmbeddingStore, Predictor

predictor = Predictor(sys.argv[1], embeddings=EmbeddingStore(sys.argv[2]))
for path in sys.argv[3:]:
    predictor.encode(np.load(path))
"""


def test_two_processes_encoding_into_one_store_write_the_bytes_of_one(litemedsam_dir, kvasir, tmp_path):
    images = []
    for i, (image, _) in enumerate(kvasir[:2]):
        images.append(os.fspath(tmp_path / f"image{i}.npy"))
        np.save(images[-1], image)
    command = [sys.executable, "-W", "error", "-c", ENCODE_INTO, os.fspath(litemedsam_dir)]
    alone = subprocess.run([*command, os.fspath(tmp_path / "alone"), *images], capture_output=True, text=True, timeout=600)
    assert alone.returncode == 0, alone.stderr
    runs = [subprocess.Popen([*command, os.fspath(tmp_path / "shared"), *order], stderr=subprocess.PIPE, text=True)
            for order in (images, images[::-1])]
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0 and err == "", err

    def files(root: Path) -> dict:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert len(files(tmp_path / "alone")) == 3 and files(tmp_path / "alone") == files(tmp_path / "shared")
