"""InteractiveSession and its mechanisms: the API contract, errors, undo, one encode per session,
the prompt protocol's decoder inputs (fake predictor), the local correction's locality
(property test), the benchmark's simulated users, and real LiteMedSAM clicks on real images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import samedenhancer as se
from samedenhancer.bench import datasets
from studies import interactive_protocol as protocol
from studies import interactive as bench
from samedenhancer.interactive import InteractiveSession
from samedenhancer.interactive import mechanisms as mech
from samedenhancer.predictor import ImageEmbedding

SIZE = 64


class FakeManifest:
    def __init__(self, trained_prompts, mask_input):
        self.name = "fake"
        self.trained_prompts = trained_prompts
        self.input_size = SIZE
        inputs = {"image_embeddings": [1], "point_coords": [1], "point_labels": [1]}
        if mask_input:
            inputs["mask_input"] = [1, 1, SIZE, SIZE]
        self.raw = {"decoder": {"inputs": inputs, "outputs": {"low_res_masks": [1, 4, SIZE, SIZE]}}}


class FakePredictor:
    """Model frame = native frame (SIZE x SIZE); a box decodes to its rectangle, points to disks
    of radius 6 (positive minus negative); records every call."""

    def __init__(self, trained_prompts=("box",), mask_input=False):
        self.manifest = FakeManifest(trained_prompts, mask_input)
        self.encode_calls = 0
        self.decode_calls = []

    def encode(self, image):
        self.encode_calls += 1
        return ImageEmbedding((np.zeros((1, 1), np.float32),), image.shape[:2], (1.0, 1.0), image.shape[:2], "fake")

    def decode(self, embedding, point_coords=None, point_labels=None, box=None, multimask_output=False, mask_input=None):
        boxes = box
        self.decode_calls.append(dict(points=None if point_coords is None else np.array(point_coords),
                                      labels=None if point_labels is None else np.array(point_labels),
                                      boxes=None if boxes is None else np.array(boxes), mask_input=mask_input))
        if boxes is not None and np.asarray(boxes).reshape(-1, 4).shape[0] > 1:  # one mask per box;
            # predicted IoU grows with the box's area (the largest box is the fake's best answer)
            out = np.full((len(boxes), 1, SIZE, SIZE), -5.0, np.float32)
            areas = []
            for i, box in enumerate(np.round(np.asarray(boxes)).astype(int)):
                x0, y0, x1, y1 = box
                out[i, 0, y0 : y1 + 1, x0 : x1 + 1] = 5.0
                areas.append((x1 - x0 + 1) * (y1 - y0 + 1))
            return out, (np.array(areas, np.float32) / max(areas))[:, None]
        logits = np.full((SIZE, SIZE), -5.0, np.float32)
        if boxes is not None:
            x0, y0, x1, y1 = np.round(np.asarray(boxes).reshape(4)).astype(int)
            logits[y0 : y1 + 1, x0 : x1 + 1] = 5.0
        if point_coords is not None:
            yy, xx = np.mgrid[:SIZE, :SIZE]
            for (x, y), label in zip(np.asarray(point_coords).reshape(-1, 2), np.asarray(point_labels).reshape(-1)):
                disk = (xx - x) ** 2 + (yy - y) ** 2 <= 36
                logits[disk] = 5.0 if label == 1 else -5.0
        return logits[None, None], np.ones((1, 1), np.float32)

    def upscale(self, embedding, low_res):
        return np.asarray(low_res, np.float32)


def image_with_square():
    image = np.full((SIZE, SIZE), 40, np.uint8)
    image[16:48, 16:48] = 200
    return image


@pytest.fixture
def fake():
    return FakePredictor()


def test_session_is_exported_at_top_level():
    assert se.InteractiveSession is InteractiveSession and "InteractiveSession" in se.__all__


def test_api_contract_and_undo(fake):
    session = InteractiveSession(image_with_square(), fake)
    mask = session.start(box=[20, 20, 40, 40])
    assert mask.dtype == np.bool_ and mask.shape == (SIZE, SIZE)
    assert mask[20:41, 20:41].all() and mask.sum() == 21 * 21
    assert session.clicks == ()
    grown = session.click(44, 30, positive=True)  # inside the bright square, outside the box mask
    assert grown.dtype == np.bool_ and grown.shape == (SIZE, SIZE)
    assert grown[30, 44] and grown.sum() > mask.sum() and (grown | mask).sum() == grown.sum()
    assert session.clicks == ((44, 30, True),)
    shrunk = session.click(22, 22, positive=False)
    assert not shrunk[22, 22] and (shrunk & ~grown).sum() == 0
    assert session.clicks == ((44, 30, True), (22, 22, False))
    assert np.array_equal(session.undo(), grown) and np.array_equal(session.mask, grown)
    assert np.array_equal(session.undo(), mask) and session.clicks == ()
    with pytest.raises(RuntimeError, match="nothing to undo"):
        session.undo()
    session.mask[:] = False  # a copy: the session's mask is not touched
    assert np.array_equal(session.mask, mask)


def test_point_and_mask_starts(fake):
    session = InteractiveSession(image_with_square(), fake)
    mask = session.start(point=(30, 30))
    assert mask[30, 30] and session.clicks == ((30, 30, True),)
    coarse = np.zeros((SIZE, SIZE), np.uint8)
    coarse[10:30, 10:30] = 255
    assert np.array_equal(session.start(mask=coarse), coarse > 0) and session.clicks == ()


def test_mask_start_keeps_the_mask_and_reads_back_from_its_logits(fake):
    coarse = np.zeros((SIZE, SIZE), bool)
    coarse[12:30, 14:44] = True
    coarse[20:24, 30:34] = False
    seg = mech.segment_from_mask(fake, fake.encode(image_with_square()), coarse)
    assert np.array_equal(seg.mask, coarse) and np.array_equal(seg.logits > 0, coarse)
    assert seg.low_res.shape == (1, 1, SIZE, SIZE) and np.array_equal(seg.low_res[0, 0] > 0, coarse)
    empty = mech.segment_from_mask(fake, fake.encode(image_with_square()), np.zeros((SIZE, SIZE), bool))
    assert not empty.mask.any() and (empty.logits < 0).all()


def test_errors(fake):
    session = InteractiveSession(image_with_square(), fake)
    with pytest.raises(RuntimeError, match="start"):
        session.click(3, 3)
    with pytest.raises(RuntimeError, match="start"):
        session.mask
    with pytest.raises(RuntimeError, match="start"):
        session.undo()
    with pytest.raises(ValueError, match="x0 < x1"):
        session.start(box=[40, 20, 20, 40])
    with pytest.raises(ValueError, match="inside"):
        session.start(box=[-5, 0, 20, 20])
    with pytest.raises(ValueError, match="inside"):
        session.start(box=[0, 0, 20, SIZE])
    with pytest.raises(ValueError, match="exactly one"):
        session.start(box=[0, 0, 20, 20], point=(3, 3))
    with pytest.raises(ValueError, match="exactly one"):
        session.start()
    with pytest.raises(ValueError, match="shape"):
        session.start(mask=np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="mask must be finite"):  # issue 30, item 20: NaN was an object
        session.start(mask=np.full((SIZE, SIZE), np.nan))
    with pytest.raises(TypeError, match="real numbers"):
        session.start(mask=np.full((SIZE, SIZE), "x"))
    with pytest.raises(ValueError, match="inside"):
        session.start(box=[0, 0, 1e300, 20])
    with pytest.raises(ValueError, match="finite"):
        session.start(box=[0, 0, np.inf, 20])
    with pytest.raises(ValueError, match="outside"):
        session.start(point=(1e300, 3))
    with pytest.raises(ValueError, match="outside"):
        session.start(point=(SIZE, 3))
    session.start(box=[20, 20, 40, 40])
    with pytest.raises(ValueError, match="outside"):
        session.click(-1, 5)
    with pytest.raises(ValueError, match="outside"):
        session.click(5, SIZE + 3)
    with pytest.raises(TypeError, match="positive"):
        session.click(5, 5, positive=1)
    with pytest.raises(TypeError, match="click x"):
        session.click("5", 5)
    with pytest.raises(ValueError, match="outside"):
        session.click(1e300, 5)
    with pytest.raises(ValueError, match="click y must be a number"):
        session.click(5, np.nan)
    with pytest.raises(ValueError, match="correction"):
        InteractiveSession(image_with_square(), fake, correction="magic")
    with pytest.raises(TypeError, match="model"):
        InteractiveSession(image_with_square(), 3)
    assert session.clicks == ()  # failed calls change nothing


@pytest.mark.parametrize("correction", ["local", "prompt"])
def test_a_click_never_calls_the_encoder(correction):
    fake = FakePredictor(mask_input=True)
    session = InteractiveSession(image_with_square(), fake, correction=correction)
    assert fake.encode_calls == 1 and session.encodes == 1
    session.start(box=[20, 20, 40, 40])
    decodes = len(fake.decode_calls)
    for x, y, positive in [(44, 30, True), (22, 22, False), (45, 45, True)]:
        session.click(x, y, positive)
    # the local correction needs no model call at all; the prompt protocol one decode per click
    assert len(fake.decode_calls) - decodes == (0 if correction == "local" else 3)
    session.undo()
    session.start(mask=session.mask)
    session.click(30, 46)
    assert fake.encode_calls == 1
    reused = InteractiveSession(image_with_square(), fake, embedding=session.embedding)
    reused.start(point=(30, 30))
    reused.click(31, 31, positive=False)
    assert fake.encode_calls == 1 and reused.encodes == 0


def test_prompt_correction_sends_accumulated_clicks_box_and_previous_logits():
    fake = FakePredictor(trained_prompts=("box", "point"), mask_input=True)
    session = InteractiveSession(image_with_square(), fake)
    assert session.correction == "prompt"  # chosen by the manifest
    session.start(box=[20, 20, 40, 40])
    first = fake.decode_calls[-1]
    session.click(44, 30, True)
    call = fake.decode_calls[-1]
    np.testing.assert_array_equal(call["points"].reshape(-1, 2), [[44, 30]])
    np.testing.assert_array_equal(call["boxes"].reshape(4), [20, 20, 40, 40])
    assert first["mask_input"] is None and call["mask_input"].shape == (1, 1, SIZE, SIZE)
    previous = call
    session.click(22, 22, False)
    call = fake.decode_calls[-1]
    np.testing.assert_array_equal(call["points"].reshape(-1, 2), [[44, 30], [22, 22]])
    np.testing.assert_array_equal(call["labels"].reshape(-1), [1, 0])
    # the mask prompt is the previous step's low-res logits
    expected, _ = FakePredictor().decode(None, previous["points"], previous["labels"], previous["boxes"])
    np.testing.assert_array_equal(call["mask_input"], expected)


def test_prompt_correction_without_a_mask_path_sends_points_only():
    fake = FakePredictor(trained_prompts=("point",), mask_input=False)
    session = InteractiveSession(image_with_square(), fake)
    session.start(point=(30, 30))
    session.click(50, 50, False)
    assert fake.decode_calls[-1]["mask_input"] is None


def test_correction_follows_the_manifest():
    assert mech.correction_for(FakeManifest(("box",), False)) == "local"
    assert mech.correction_for(FakeManifest(("box", "point"), True)) == "prompt"
    manifest = FakeManifest(("box",), False)
    manifest.raw["interactive"] = {"correction": "prompt"}
    assert mech.correction_for(manifest) == "prompt"
    manifest.raw["interactive"] = {"correction": "other"}
    with pytest.raises(ValueError, match="interactive.correction"):
        mech.correction_for(manifest)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), positive=st.booleans())
def test_local_correction_stays_near_the_click_and_moves_one_way(seed, positive):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(40, 120)), int(rng.integers(40, 120))
    guide = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2.0)
    logits = cv2.GaussianBlur(rng.normal(0, 4, (h, w)).astype(np.float32), (0, 0), 4.0)
    mask = logits > 0
    current = mech.Segmentation(mask, logits, np.zeros((1, 1, 4, 4), np.float32))
    x, y = int(rng.integers(w)), int(rng.integers(h))
    options = mech.LocalOptions()
    out = mech.correct_locally(guide, current, x, y, positive, options)
    changed = out.mask != mask
    if positive:
        assert not (mask & ~out.mask).any()  # a positive click only adds
    else:
        assert not (~mask & out.mask).any()  # a negative click only removes
    assert out.mask[y, x] == positive
    wrong = ~mask if positive else mask
    if not wrong[y, x]:
        assert not changed.any()
        return
    depth = float(np.sqrt(((np.argwhere(~wrong) - [y, x]) ** 2).sum(1)).min()) if (~wrong).any() else max(h, w)
    if positive and mask.any():
        depth = min(depth, max(1.0, options.max_depth_fraction * np.sqrt(mask.sum() / np.pi)))
    reach = max(options.reach * depth, options.min_reach)
    ys, xs = np.nonzero(changed)
    assert (np.hypot(xs - x, ys - y) <= reach + 1e-6).all()
    # the change is one 4-connected piece holding the click
    count, comp = cv2.connectedComponents(changed.astype(np.uint8), connectivity=4)
    assert count == 2 and comp[y, x] == 1
    assert np.array_equal(out.logits[changed] > 0, np.full(changed.sum(), positive))
    if not positive and changed.sum() > options.max_removal * mask.sum():  # only the fallback's reach
        fallback = max(options.fallback_reach * depth, options.min_reach)
        assert (np.hypot(xs - x, ys - y) <= fallback + 1e-6).all()


def test_a_negative_click_trims_an_object_instead_of_deleting_it():
    """A negative click that would remove most of the mask removes only the part within the
    fallback reach (LiteMedSAM's box answer on a ring is the cavity with a rim of the ring)."""
    h, w = 60, 100
    yy, xx = np.mgrid[:h, :w]
    blob = ((xx - 50) / 34.0) ** 2 + ((yy - 30) / 12.0) ** 2 < 1  # 68 x 24 px
    logits = np.where(blob, 4.0, -4.0).astype(np.float32)
    guide = np.full((h, w), 0.5, np.float32)
    current = mech.Segmentation(blob, logits, np.zeros((1, 1, 4, 4), np.float32))
    everything = mech.correct_locally(guide, current, 50, 30, False, mech.LocalOptions(max_removal=1.0))
    assert everything.mask.sum() < 0.5 * blob.sum()  # uncapped: reach 2 x 12 px takes most of it
    out = mech.correct_locally(guide, current, 50, 30, False)
    assert not out.mask[30, 50] and out.mask[30, 20] and out.mask[30, 80]  # both ends stay
    removed = blob & ~out.mask
    assert (np.hypot(xx - 50, yy - 30)[removed] <= 12 + 1e-6).all()  # within fallback_reach x depth


def test_a_positive_click_far_from_the_mask_does_not_flood_the_background():
    """A click on a missed part far from a small mask is sized by the mask, not by its distance to
    it (from a refined mask, the overruled logits are +/-0.5 where the model disagreed)."""
    h, w = 120, 200
    yy, xx = np.mgrid[:h, :w]
    small = np.hypot(xx - 20, yy - 60) < 8  # equivalent radius 8 px
    logits = np.where(small, 4.0, -0.5).astype(np.float32)
    guide = np.full((h, w), 0.5, np.float32)
    current = mech.Segmentation(small, logits, np.zeros((1, 1, 4, 4), np.float32))
    uncapped = mech.correct_locally(guide, current, 150, 60, True, mech.LocalOptions(max_depth_fraction=np.inf))
    out = mech.correct_locally(guide, current, 150, 60, True)
    added = out.mask & ~small
    assert out.mask[60, 150] and (uncapped.mask & ~small).sum() > 20 * added.sum()
    depth = mech.LocalOptions().max_depth_fraction * np.sqrt(small.sum() / np.pi)
    radius = max(mech.LocalOptions().reach * depth, mech.LocalOptions().min_reach)
    assert (np.hypot(xx - 150, yy - 60)[added] <= radius + 1e-6).all()


def test_local_correction_keeps_earlier_clicks(fake):
    session = InteractiveSession(image_with_square(), fake)
    session.start(box=[20, 20, 40, 40])
    session.click(44, 30, True)
    mask = session.click(30, 30, False)  # a negative click near the earlier positive one
    assert mask[30, 44]


def test_simulated_users():
    truth = np.zeros((50, 60), bool)
    truth[10:40, 10:50] = True
    mask = truth.copy()
    mask[10:40, 30:50] = False  # a 30 x 20 false-negative block
    mask[45:48, 0:5] = True  # a small false positive
    x, y, positive = protocol.farthest_click(mask, truth)
    assert positive and 38 <= x <= 41 and 18 <= y <= 31  # 10 px from the block's sides
    assert protocol.farthest_click(truth, truth) is None
    clicks = protocol.random_clicks(mask, truth, np.random.default_rng(0))
    assert [c[2] for c in clicks] == [True, False]
    assert all(truth[c[1], c[0]] != mask[c[1], c[0]] for c in clicks)
    rng = np.random.default_rng(1)
    for _ in range(20):
        x0, y0, x1, y1 = protocol.jittered_box(truth, rng)
        assert 0 <= x0 <= 10 and 0 <= y0 <= 10 and 49 <= x1 <= 59 and 39 <= y1 <= 49
    x, y = protocol.center_point(truth)  # 15 px deep: on the 40 x 30 block's long midline
    assert truth[y, x] and 24 <= y <= 25 and 24 <= x <= 35


# -- the real LiteMedSAM on real images ---------------------------------------------------------
@pytest.fixture(scope="module")
def busi(data_root, litemedsam_dir):
    predictor = se.Predictor(litemedsam_dir)
    sample = [s for s in datasets.samples("busi") if s.ground_truth().any()][0]
    return predictor, sample.image(), sample.ground_truth() > 0


def test_real_positive_click_grows_the_mask_in_a_false_negative_region(busi):
    predictor, image, truth = busi
    calls = []
    encode = predictor.encode
    predictor.encode = lambda img: calls.append(1) or encode(img)
    try:
        session = InteractiveSession(image, predictor)
    finally:
        del predictor.encode
    assert session.correction == "local" and len(calls) == 1
    ys, xs = np.nonzero(truth)
    # a box that cuts off the right third of the lesion: the model misses it
    cut = int(xs.min() + 0.66 * (xs.max() - xs.min()))
    start = session.start(box=[xs.min(), ys.min(), cut, ys.max()])
    missed = truth & ~start
    x, y, positive = protocol.farthest_click(start, truth)
    assert positive and missed[y, x]
    after = session.click(x, y, positive)
    gained = after & ~start
    assert gained[y, x] and gained.sum() > 20
    assert (gained & truth).sum() > 0.7 * gained.sum()  # it grows into the lesion, not around it
    assert protocol.dice(after, truth) > protocol.dice(start, truth)
    assert len(calls) == 1


def test_real_clicks_from_the_box_improve_dice(busi):
    predictor, image, truth = busi
    session = InteractiveSession(image, predictor)
    mask = session.start(box=protocol.jittered_box(truth, np.random.default_rng(0)))
    scores = [protocol.dice(mask, truth)]
    for _ in range(3):
        mask = session.click(*protocol.farthest_click(mask, truth))
        scores.append(protocol.dice(mask, truth))
    assert scores[-1] > scores[0] + 0.01
    assert np.array_equal(session.undo(), session.mask) and len(session.clicks) == 2


def test_benchmark_protocol_on_a_fake_model(fake, tmp_path):
    image = image_with_square()
    truth = image > 100
    coarse = np.zeros_like(truth)
    coarse[18:46, 18:40] = True
    case = protocol.Case("busi", "BUSI", "x", image, fake.encode(image), truth, coarse)
    ours = protocol.run_cases(fake, [case], None, full=True)
    runs = ours[("BUSI", "box", "farthest")]
    assert len(runs) == 1 and len(runs[0].dice) == protocol.CLICKS + 1 and len(runs[0].seconds) <= protocol.CLICKS
    random_run = ours[("BUSI", "mask", "random")][0]
    assert all(np.isnan(random_run.dice[k]) for k in range(1, protocol.CLICKS + 1, 2))
    assert ("BUSI", "expand", 20) in ours and ("BUSI", "shift", -10) in ours
    competitor = protocol.run_cases(fake, [case], "prompt", full=False)
    lines, summary = bench.report("fake", 1, ["BUSI"], ours, competitor, [0.01], [0.05], [], 1.0, "cmd")
    text = "\n".join(lines)
    assert "## Targets" in text and "| BUSI | box | farthest | 1 |" in text
    assert summary["targets"]["BUSI"]["box"] == runs[0].dice[0]
    path = tmp_path / "plot.png"
    bench.plot({("BUSI", s): np.linspace(0.5, 0.9, protocol.CLICKS + 1) for s in protocol.STARTS}, ["BUSI"], path)
    assert cv2.imread(str(path)).shape[2] == 3


def test_shortfall_names_the_images_that_make_the_gap():
    """The mask start's gap to the box start's five clicks, split into the images' shares."""
    nan = float("nan")

    def run(stem, start, three, five):
        return protocol.Run([start, nan, nan, three, nan, five, nan, nan, nan], [], stem)

    ours = {
        ("CVC-ClinicDB", "box", "farthest"): [run("a", 0.9, 0.94, 0.96), run("b", 0.9, 0.94, 0.96), run("c", 0.9, 0.95, 0.96)],
        ("CVC-ClinicDB", "mask", "farthest"): [run("a", 0.92, 0.96, 0.97), run("b", 0.0, 0.30, 0.40), run("c", 0.9, 0.97, 0.97)],
    }
    lines = bench.shortfall(["CVC-ClinicDB"], ours)
    row = next(line for line in lines if line.startswith("| CVC-ClinicDB"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # start gap: (0.9 - 0.92 + 0.9 - 0 + 0.9 - 0.9) / 3; gap: (0.96 - 0.96 + 0.96 - 0.30 + 0.96 - 0.97) / 3
    assert cells[1] == "+29.3" and cells[2] == "+21.7"
    assert cells[3].startswith("b (0.0 -> 30.0 vs 96.0), +22.0")
    assert cells[4] == "-0.5"  # without image b the mask start's 3 clicks beat the box's 5


def _blob_session(fake, start):
    image = image_with_square()
    session = InteractiveSession(image, fake, correction="local")
    wrong = np.zeros(image.shape[:2], bool)
    wrong[4:16, 44:60] = True  # a blob away from the square: the start found the wrong object
    if start == "mask":
        session.start(mask=wrong)
    else:
        session.start(box=[44, 4, 59, 15])
    return session, wrong


def test_a_deep_negative_click_deletes_a_wrong_object_found_by_a_mask_start(fake):
    session, wrong = _blob_session(fake, "mask")
    decodes = len(fake.decode_calls)
    after = session.click(51, 9, positive=False)  # the blob's centre
    assert not (after & wrong).any() and len(fake.decode_calls) == decodes  # no decoder call
    session.undo()
    edge = session.click(45, 5, positive=False)  # near its rim: an edit, not a deletion
    assert (edge & wrong).sum() > 0.5 * wrong.sum()


def test_a_component_holding_a_positive_click_is_not_deleted(fake):
    session, wrong = _blob_session(fake, "mask")
    session.click(45, 5, positive=False)
    session.click(45, 5, positive=True)  # the user confirmed this part
    after = session.click(51, 9, positive=False)
    assert after[5, 45] and after.sum() > 0.4 * wrong.sum()


def test_a_box_start_is_never_deleted_by_one_click(fake):
    session, _ = _blob_session(fake, "box")
    start = session.mask
    after = session.click(51, 9, positive=False)
    assert after.sum() >= 0.4 * start.sum()


def test_a_positive_click_on_an_empty_mask_asks_the_model_with_boxes_around_it(fake):
    image = image_with_square()
    session = InteractiveSession(image, fake, correction="local")
    session.start(mask=np.zeros(image.shape[:2], bool))
    after = session.click(30, 30, positive=True)  # inside the square
    boxes = fake.decode_calls[-1]["boxes"]
    assert boxes.shape == (3, 4)  # three sizes around the click, one decoder call
    assert np.allclose((boxes[:, :2] + boxes[:, 2:]) / 2, 30)
    # the fake's best predicted IoU is its largest box: 0.35 x 64 = 22.4 px wide -> pixels 19..41
    expected = np.zeros_like(after)
    expected[19:42, 19:42] = True
    assert np.array_equal(after, expected)
    assert session.encodes == 1 and fake.encode_calls == 1
