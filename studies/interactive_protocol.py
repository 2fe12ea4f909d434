"""The simulated annotation protocol of ``bench interactive`` (MedicoSAM's and SAMMed's): the
cases (image, embedding, expert mask, refined coarse mask), the starts, the simulated users and the
runs of an :class:`InteractiveSession` over them. The report and the command line are in
:mod:`studies.interactive`."""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from samedenhancer.bench import datasets
from samedenhancer.enhancer import Enhancer
from samedenhancer.interactive import InteractiveSession
from samedenhancer.predictor import ImageEmbedding, Predictor
from .corruption import corrupt_label_map, image_seed

TARGETS = (
    ("busi", 1, "BUSI"),
    ("thyroid_ddti", 1, "DDTI"),
    ("kvasir", 1, "Kvasir"),
    ("cvc_clinicdb", 1, "CVC-ClinicDB"),
    ("acdc", 3, "ACDC LV"),
    ("acdc", 2, "ACDC MYO"),
    ("acdc", 1, "ACDC RV"),
)


@dataclass
class Case:
    """One image, its embedding and one target class: the expert mask and the coarse start."""

    dataset: str
    name: str
    stem: str
    image: np.ndarray
    embedding: ImageEmbedding
    truth: np.ndarray  # bool H x W
    coarse: np.ndarray  # bool H x W, the coarse mask refined by the default Enhancer


def load_cases(predictor: Predictor, dataset: str, limit: int) -> list[tuple[str, np.ndarray, ImageEmbedding, np.ndarray, np.ndarray]]:
    """The first ``limit`` images of ``dataset`` with a non-empty expert mask: (stem, image,
    embedding, expert label map, coarse label map before refinement); ``predictor``'s embedding store,
    when it has one, keeps the embeddings for the next run."""
    out = []
    for sample in datasets.samples(dataset):
        truth = sample.ground_truth()
        if not truth.any():
            continue
        image = sample.image()
        if dataset in datasets.SEGMENTERS:
            coarse = (sample.coarse("pranet") > 127).astype(np.uint8)
        else:
            coarse = corrupt_label_map(truth, sample.stem)
        embedding = predictor.encode(image)
        out.append((sample.stem, image, embedding, truth, coarse))
        if len(out) >= limit:
            break
    return out


def build_cases(predictor: Predictor, limit: int, names=None) -> list[Case]:
    """Every (image, class) of :data:`TARGETS`, with the coarse mask refined by ``Enhancer()``."""
    enhancer = Enhancer(predictor)
    cases = []
    loaded = {}
    for dataset, label, name in TARGETS:
        if names and name not in names:
            continue
        if dataset not in loaded:
            loaded[dataset] = []
            for stem, image, embedding, truth, coarse in load_cases(predictor, dataset, limit):
                refined = enhancer.refine(enhancer.encode(image, coarse, embedding=embedding)).labels
                loaded[dataset].append((stem, image, embedding, truth, refined))
        for stem, image, embedding, truth, refined in loaded[dataset]:
            if not (truth == label).any():
                continue
            cases.append(Case(dataset, name, stem, image, embedding, truth == label, refined == label))
    return cases


# -- starts and simulated users -----------------------------------------------------------------
def jittered_box(truth: np.ndarray, rng: np.random.Generator, max_grow: int = 10) -> list[int]:
    """MedSAM's box: the expert mask's bounding box, each side grown by U{0..max_grow} pixels
    (clipped to the image)."""
    ys, xs = np.nonzero(truth)
    h, w = truth.shape
    grow = rng.integers(0, max_grow + 1, size=4)
    return [int(max(0, xs.min() - grow[0])), int(max(0, ys.min() - grow[1])),
            int(min(w - 1, xs.max() + grow[2])), int(min(h - 1, ys.max() + grow[3]))]


def center_point(truth: np.ndarray) -> tuple[int, int]:
    """(x, y) of the expert mask's distance-transform maximum (the pixel deepest inside it)."""
    depth = cv2.distanceTransform(np.pad(truth.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(x), int(y)


def farthest_click(mask: np.ndarray, truth: np.ndarray) -> tuple[int, int, bool] | None:
    """The click of the farthest-point user: inside the largest connected error region (false
    negatives if that region is a false-negative one), at the pixel farthest from its boundary
    (the image border counts as boundary). ``None`` when the mask is right."""
    best = None
    for positive, error in ((True, truth & ~mask), (False, mask & ~truth)):
        if not error.any():
            continue
        count, comp, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8), connectivity=8)
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = int(stats[k, cv2.CC_STAT_AREA])
        if best is None or area > best[0]:
            best = (area, positive, comp == k)
    if best is None:
        return None
    _, positive, region = best
    depth = cv2.distanceTransform(np.pad(region.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(x), int(y), positive


def random_clicks(mask: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int, bool]]:
    """MedicoSAM's user: one random false-negative and one random false-positive pixel (those that
    exist) per round."""
    out = []
    for positive, error in ((True, truth & ~mask), (False, mask & ~truth)):
        ys, xs = np.nonzero(error)
        if ys.size:
            i = int(rng.integers(ys.size))
            out.append((int(xs[i]), int(ys[i]), positive))
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


# -- runs -------------------------------------------------------------------------------------
CLICKS = 8
STARTS = ("box", "point", "mask")
EXPANSIONS = (0, 5, 10, 20)
SHIFTS = (-10, -5, 5, 10)


@dataclass
class Run:
    """Dice after 0..CLICKS clicks (NaN where a clicker has no such count), seconds per click and
    the image's stem."""

    dice: list
    seconds: list
    stem: str = ""


def start_session(session: InteractiveSession, case: Case, start: str, box=None) -> np.ndarray:
    if start == "box":
        return session.start(box=box if box is not None else jittered_box(case.truth, np.random.default_rng(image_seed(case.stem))))
    if start == "point":
        return session.start(point=center_point(case.truth))
    return session.start(mask=case.coarse)


def simulate(session: InteractiveSession, case: Case, start: str, user: str, clicks: int = CLICKS, box=None) -> Run:
    """One simulated annotation: the start, then ``clicks`` clicks of ``user`` ("farthest" or
    "random": MedicoSAM's FN + FP pair per round, so Dice is known after every second click)."""
    mask = start_session(session, case, start, box)
    curve = [dice(mask, case.truth)] + [float("nan")] * clicks
    seconds = []
    rng = np.random.default_rng(image_seed(case.stem, base=1))
    done = 0
    while done < clicks:
        batch = [farthest_click(mask, case.truth)] if user == "farthest" else random_clicks(mask, case.truth, rng)
        batch = [c for c in batch if c is not None][: clicks - done]
        if not batch:  # the mask is right: it stays so
            for k in range(done + 1, clicks + 1):
                if user == "farthest" or k % 2 == 0:
                    curve[k] = curve[done]
            break
        for x, y, positive in batch:
            t0 = time.perf_counter()
            mask = session.click(x, y, positive)
            seconds.append(time.perf_counter() - t0)
        done += 1 if user == "farthest" else 2
        curve[done] = dice(mask, case.truth)
    return Run(curve, seconds, case.stem)


def run_cases(predictor: Predictor, cases: list[Case], correction: str, *, full: bool) -> dict:
    """``{(name, start, user): [Run, ...]}`` and, with ``full``, the box-jitter rows
    ``{(name, "expand"|"shift", k): [(box Dice, Dice after 3 clicks), ...]}``."""
    out: dict = {}
    for case in cases:
        session = InteractiveSession(case.image, predictor, correction=correction, embedding=case.embedding)
        plans = [(s, u) for s in STARTS for u in ("farthest", "random")] if full else [("box", "farthest")]
        for start, user in plans:
            out.setdefault((case.name, start, user), []).append(simulate(session, case, start, user))
        if not full:
            continue
        ys, xs = np.nonzero(case.truth)
        h, w = case.truth.shape
        tight = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
        boxes = [("expand", k, tight + np.array([-k, -k, k, k])) for k in EXPANSIONS]
        boxes += [("shift", s, tight + s) for s in SHIFTS]
        for kind, k, box in boxes:
            box = np.clip(box, 0, [w - 1, h - 1, w - 1, h - 1])
            if not (box[0] < box[2] and box[1] < box[3]):
                continue
            run = simulate(session, case, "box", "farthest", clicks=3, box=box)
            out.setdefault((case.name, kind, k), []).append((run.dice[0], run.dice[3]))
    return out


def mean_curve(runs: list[Run]) -> np.ndarray:
    """Mean Dice per click count over ``runs`` (NaN where no run has that count)."""
    table = np.array([r.dice for r in runs], float).reshape(len(runs), -1)
    known = np.isfinite(table)
    total = np.where(known, table, 0.0).sum(axis=0)
    count = known.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def cases_512(predictor: Predictor, cases: list[Case], images: int = 4) -> list[Case]:
    """The first ``images`` BUSI/DDTI cases resized to 512 x 512 (the latency target's size)."""
    out = []
    for case in [c for c in cases if c.dataset in ("busi", "thyroid_ddti")][:images]:
        image = cv2.resize(case.image, (512, 512), interpolation=cv2.INTER_AREA)
        truth = cv2.resize(case.truth.astype(np.uint8), (512, 512), interpolation=cv2.INTER_NEAREST) > 0
        embedding = predictor.encode(image)
        out.append(Case(case.dataset, case.name, case.stem, image, embedding, truth, truth))
    return out


def latency(predictor: Predictor, cases: list[Case], correction: str) -> list[float]:
    """Seconds per click, box start, farthest-point user, 8 clicks per case (no encode timed)."""
    seconds = []
    for case in cases:
        session = InteractiveSession(case.image, predictor, correction=correction, embedding=case.embedding)
        seconds += simulate(session, case, "box", "farthest").seconds
    return seconds
