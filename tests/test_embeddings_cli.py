"""The embedding store from every command and feature that encodes, on the real LiteMedSAM and small
real Kvasir images: ``embed`` fills the store exactly as ``enhance`` encodes (then ``enhance``
encodes nothing and writes the bytes of a run without a store), every command run twice with
``--embeddings`` encodes nothing the second time and writes the same bytes, the Python keyword
``embeddings=`` reaches the store from every feature, and a folder that is not a store, or that
overlaps an input or the output, is refused before any work and left untouched."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

import samedenhancer as se
from samedenhancer import EmbeddingStore, Enhancer, InteractiveSession, Predictor, io
from samedenhancer.bench import datasets
from samedenhancer.cli import main
from samedenhancer.pseudolabel import pseudolabel

IMAGES = 3  # small real images: the encoder is the cost of this file


@pytest.fixture(scope="module")
def folders(tmp_path_factory, data_root):
    """``IMAGES`` Kvasir images with PraNet maps, 120 px wide (the encoder input is 256 px whatever
    the size), and a 3-slice volume with a seed for ``propagate``."""
    base = tmp_path_factory.mktemp("embeddings-cli")
    for sample in datasets.samples("kvasir", data_root)[:IMAGES]:
        image, coarse = sample.image(), sample.coarse("pranet")
        size = (120, round(120 * image.shape[0] / image.shape[1]))
        io.write_mask(base / "images" / f"{sample.stem}.png",
                      np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA)[..., ::-1]))
        io.write_mask(base / "coarse" / f"{sample.stem}.png", cv2.resize(coarse, size, interpolation=cv2.INTER_AREA))
    for name in ("images", "coarse"):  # one pair alone, for the commands run twice
        first = sorted((base / name).iterdir())[0]
        (base / "one" / name).mkdir(parents=True)
        (base / "one" / name / first.name).write_bytes(first.read_bytes())
    pytest.importorskip("nibabel", reason="propagate's scan is NIfTI")
    yy, xx = np.mgrid[:96, :96]
    volume = np.stack([((yy - 48) ** 2 + (xx - 40 - 3 * z) ** 2 < 400) * 200 for z in range(3)], axis=2).astype(np.uint8)
    io.write_volume(base / "scan" / "case.nii.gz", volume, affine=np.eye(4))
    io.write_mask(base / "seed" / "seed.png", (volume[..., 1] > 0).astype(np.uint8))
    return base


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _store_counts(text: str) -> tuple[int, int]:
    """``(reused, encoded)`` from a summary's ``embeddings: R reused, E encoded``."""
    found = re.search(r"embeddings: (\d+) reused, (\d+) encoded", text)
    assert found, text
    return int(found[1]), int(found[2])


def test_embed_then_enhance_encodes_nothing_and_writes_the_bytes_of_a_run_without_a_store(folders, litemedsam_dir,
                                                                                          tmp_path, capsys):
    store = tmp_path / "store"
    assert main(["embed", f"{folders}/images", "--embeddings", str(store), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"embed: {IMAGES} done, 0 failed") and _store_counts(err) == (0, IMAGES), err
    assert len(EmbeddingStore(store)) == IMAGES
    assert main(["embed", f"{folders}/images", "--embeddings", str(store), "--quiet"]) == 0  # resume: hashes only
    assert _store_counts(capsys.readouterr().err) == (IMAGES, 0)
    enhance = ["enhance", f"{folders}/images", f"{folders}/coarse", "--threshold", "127", "--quiet"]
    assert main([*enhance, "--out", str(tmp_path / "stored"), "--embeddings", str(store)]) == 0
    assert _store_counts(capsys.readouterr().err) == (IMAGES, 0)  # no encoder call
    assert main([*enhance, "--out", str(tmp_path / "plain")]) == 0
    assert "embeddings:" not in capsys.readouterr().err
    plain = _files(tmp_path / "plain")
    assert len(plain) == IMAGES and _files(tmp_path / "stored") == plain


def _twice(argv, capsys, out_of) -> list[dict]:
    """Run ``argv`` twice; the outputs of each run (``out_of(run)``: the folder or file written)."""
    outputs = []
    for run in (1, 2):
        code = main(argv(run))
        captured = capsys.readouterr()
        assert code == 0, captured.err
        reused, encoded = _store_counts(captured.err + captured.out)
        assert (encoded > 0) if run == 1 else (encoded == 0 and reused > 0), (run, captured.err + captured.out)
        target = out_of(run)
        outputs.append(_files(target) if target.is_dir() else {"figure": target.read_bytes()})
    return outputs


COMMANDS = {
    "enhance": lambda b, o: ["enhance", f"{b}/one/images", f"{b}/one/coarse", "--threshold", "127", "--out", o, "--quiet"],
    "pseudolabel": lambda b, o: ["pseudolabel", f"{b}/one/images", f"{b}/one/coarse", "--threshold", "127", "--out", o,
                                 "--quiet"],
    "prior-maps": lambda b, o: ["prior-maps", f"{b}/one/images", "--out", o, "--quiet"],
    "propagate": lambda b, o: ["propagate", f"{b}/scan/case.nii.gz", f"{b}/seed/seed.png", "--slice", "1", "--out", o],
    "demo": lambda b, o: ["demo", "--out", f"{o}.png"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_run_twice_with_a_store_encodes_nothing_the_second_time(folders, litemedsam_dir, tmp_path,
                                                                              capsys, command):
    store = str(tmp_path / "store")
    runs = _twice(lambda run: [*COMMANDS[command](folders, str(tmp_path / f"out{run}")), "--embeddings", store],
                  capsys, lambda run: tmp_path / (f"out{run}.png" if command == "demo" else f"out{run}"))
    assert runs[0] and runs[0] == runs[1]


def test_the_python_keyword_reaches_the_store_from_every_feature(litemedsam_dir, folders, tmp_path):
    predictor = Predictor(litemedsam_dir)
    store = EmbeddingStore(tmp_path / "store")
    image = io.read_image(sorted((folders / "images").glob("*.png"))[0])
    coarse = io.read_mask(folders / "coarse" / sorted((folders / "images").glob("*.png"))[0].name)
    InteractiveSession(image, predictor, embeddings=store)  # encodes and stores
    assert (store.stats.misses, store.stats.hits) == (1, 0)
    plain = Enhancer(predictor, threshold=127).enhance(image, coarse).mask
    stored = Enhancer(predictor, threshold=127, embeddings=store).enhance(image, coarse).mask
    label = pseudolabel(image, coarse, enhancer=Enhancer(predictor, threshold=127), embeddings=store)
    se.prior_maps(image, predictor, embeddings=store)
    assert (store.stats.misses, store.stats.hits) == (1, 3)  # no encoder call after the first
    assert stored.tobytes() == plain.tobytes() == label.mask.tobytes()
    assert predictor.embeddings is None  # a ready predictor given with a store is not changed
    volume = np.stack([image[..., 0]] * 2, axis=2)
    seed = (coarse > 127).astype(np.uint8)
    first = se.propagate(volume, seed, 0, model=predictor, embeddings=store)
    again = se.propagate(volume, seed, 0, model=predictor, embeddings=store)
    assert store.stats.misses == 2 and np.array_equal(first.mask, again.mask)  # slice 0 and 1 are one image


@pytest.mark.parametrize("make", [
    lambda p, s: Enhancer(p, embeddings=s), lambda p, s: se.prior_maps(np.zeros((8, 8), np.uint8), p, embeddings=s),
    lambda p, s: se.propagate(np.zeros((8, 8, 2), np.uint8), np.ones((8, 8), np.uint8), 0, model=p, embeddings=s),
    lambda p, s: pseudolabel(np.zeros((8, 8), np.uint8), np.ones((8, 8), np.uint8), embeddings=s),
    lambda p, s: InteractiveSession(np.zeros((8, 8), np.uint8), p, embeddings=s),
], ids=["Enhancer", "prior_maps", "propagate", "pseudolabel", "InteractiveSession"])
def test_a_folder_path_instead_of_a_store_is_a_type_error(tmp_path, make):
    with pytest.raises(TypeError, match="embeddings must be a samedenhancer.EmbeddingStore or None, got str"):
        make("litemedsam", str(tmp_path))


def test_a_folder_the_store_did_not_make_is_refused_and_left_untouched(folders, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    before = _files(mine)
    for argv in (["embed", f"{folders}/images"],
                 ["enhance", f"{folders}/images", f"{folders}/coarse", "--out", str(tmp_path / "out")]):
        assert main([*argv, "--embeddings", str(mine), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"samedenhancer {argv[0]}: ") and "is not an embedding store" in err, err
        assert _files(mine) == before and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("where", ["out", "out/store", "parent-of-out", "images", "images/sub", "parent-of-images"])
def test_a_store_overlapping_an_input_or_the_output_is_refused_before_any_work(folders, tmp_path, capsys, where):
    base = tmp_path / "work"
    (base / "images").mkdir(parents=True)
    (base / "coarse").mkdir()
    for name in ("images", "coarse"):
        first = sorted((folders / name).glob("*.png"))[0]
        (base / name / first.name).write_bytes(first.read_bytes())
    store = {"parent-of-out": base / "runs", "parent-of-images": base}.get(where, base / where)
    out = base / "runs" / "out" if where == "parent-of-out" else base / "out"
    code = main(["enhance", str(base / "images"), str(base / "coarse"), "--out", str(out), "--embeddings", str(store),
                 "--quiet"])
    err = capsys.readouterr().err
    named = "--out" if "out" in where else "images"
    assert code == 2 and err.startswith("samedenhancer enhance: --embeddings") and named in err, err
    assert not list(out.glob("*.png")) and not (store / "samedenhancer-embeddings.json").exists()


def test_stream_refuses_a_store_and_says_why(folders, tmp_path, capsys):
    code = main(["stream", f"{folders}/images", "--coarse", f"{folders}/coarse", "--out", str(tmp_path / "out"),
                 "--embeddings", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert code == 2 and "no two video frames are the same" in err and not (tmp_path / "store").exists()


def test_store_flags_without_a_store_are_refused(folders, tmp_path, capsys):
    code = main(["prior-maps", f"{folders}/images", "--out", str(tmp_path / "out"), "--embeddings-fp16"])
    assert code == 2 and "go with --embeddings DIR" in capsys.readouterr().err
