"""The SAMedEnhancer pipeline: coarse label map in, refined label map out.

One image encode, prompts mined for all classes in one call of the C++ core, all regions of all
classes decoded in one batched decoder call per stage, logits pasted back at native resolution,
overlaps between classes resolved by the higher logit (METHOD.md §3). With the box policy
(LiteMedSAM's default) a soft coarse map is fused with the model's logits and each region's box is
re-mined from its refined mask until it stops moving (``Enhancer(fusion=..., box_rounds=...)``), and
on a map with several classes a no-harm gate keeps the coarse region where the refined one disagrees
with it (``Enhancer(gate=...)``).

References
----------
.. [1] SAMedEnhancer, "Generic medical image segmentation enhancement by adapting Segment Anything
   Model" (the method; ``../shared/papers/samedenhancer.txt``).
"""

from __future__ import annotations

import numbers
import os
import time
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..core import Prompts, coarse_log_odds, mine_prompts
from ..metrics import dice
from ..predictor import Predictor
from ..transforms import check_image

#: Prompt policies. ``None`` takes the model manifest's default (what the model was trained with).
POLICIES = ("box", "points", "points+box", "hierarchical")
#: Extra box rounds of the "box" policy when ``box_rounds`` is not given.
DEFAULT_BOX_ROUNDS = 2


@dataclass(frozen=True)
class Gate:
    """No-harm gate: keep the coarse region when the refinement looks unreliable.

    A region falls back to its coarse pixels when the decoder's predicted IoU is below
    ``min_iou`` or when the refined region's Dice with the coarse region is below
    ``min_agreement`` (it "disagrees wildly").
    """

    min_iou: float = 0.0
    min_agreement: float = 0.5

    def __post_init__(self) -> None:
        for name in ("min_iou", "min_agreement"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Gate {name} must be in [0, 1], got {value!r}")


@dataclass(frozen=True)
class Timings:
    """Seconds spent per stage of one image or frame (0 for a stage that did not run)."""

    mine: float = 0.0
    preprocess: float = 0.0
    encode: float = 0.0
    decode: float = 0.0
    paste: float = 0.0

    @property
    def total(self) -> float:
        return self.mine + self.preprocess + self.encode + self.decode + self.paste


@dataclass(frozen=True)
class RegionResult:
    """One merged region of the coarse mask and what the model made of it.

    ``stage1_mask``/``stage1_iou`` are set by the policies that decode points first
    ("points", "hierarchical"); ``mask``/``iou`` are the final decode of the region (after soft
    fusion when it applied). ``box`` is the box of the final decode and ``rounds`` the number of
    decoder calls the region's box took (1 without box iteration). Masks are boolean H x W at
    native resolution.
    """

    class_id: int
    box: np.ndarray
    points: np.ndarray
    point_labels: np.ndarray
    mask: np.ndarray
    iou: float
    stage1_mask: np.ndarray | None
    stage1_iou: float
    agreement: float
    fell_back: bool
    rounds: int = 1


@dataclass(frozen=True)
class EnhanceResult:
    """The refined label map and, per region, how it was obtained."""

    mask: np.ndarray
    policy: str
    regions: tuple[RegionResult, ...]
    classes: np.ndarray
    dropped_classes: np.ndarray
    timings: Timings
    fused: bool = False

    @property
    def gate_fired(self) -> int:
        """How many regions fell back to the coarse mask."""
        return sum(r.fell_back for r in self.regions)


@dataclass(frozen=True)
class VolumeResult:
    """The refined label volume and the result of each slice (in slice order)."""

    mask: np.ndarray
    axis: int
    slices: tuple[EnhanceResult, ...]
    spacing: tuple | None = None

    @property
    def gate_fired(self) -> int:
        """How many regions of all slices fell back to the coarse mask."""
        return sum(s.gate_fired for s in self.slices)


@dataclass(frozen=True)
class BatchItem:
    """One item of a batch: the result, or the error that stopped it (never both)."""

    index: int
    result: EnhanceResult | None
    error: Exception | None

    @property
    def ok(self) -> bool:
        return self.error is None


class Enhancer:
    """Refine coarse segmentation masks with a Segment-Anything-family model.

    Parameters
    ----------
    model : str or Predictor
        Model name or directory (``"litemedsam"``, the embedded default, is exported on first use),
        or a ready :class:`Predictor` to share one engine.
    providers : sequence of str, optional
        ONNX Runtime execution providers (CPU when omitted).
    prior : {"multi", "single"} or dict
        Domain prior per class (METHOD.md §1.5): ``"single"`` keeps the largest merged region.
    policy : {"box", "points", "points+box", "hierarchical"}, optional
        Which prompts the decoder gets. ``None`` takes the model's manifest default: ``"box"`` for
        LiteMedSAM (trained with boxes only), ``"hierarchical"`` for MedSAM2 / SAM2.1.
    gate : Gate or bool, optional
        No-harm gate: ``Gate(...)`` or ``True`` (``Gate()``) checks every region, ``False`` keeps
        every refinement. ``None`` (default): ``Gate()`` for the ``"box"`` policy on a coarse map
        holding more than one class, off otherwise. Anatomy with several classes is nested (the
        myocardium's box holds the left ventricle, the right ventricle's box part of the
        myocardium), so a box can ask the model for the neighbouring structure; the gate keeps the
        coarse region where the refined one disagrees with it (ACDC, corrupted masks: box only
        -8.6 Dice, with the gate +6.7). On single-class maps it fires on 0-4 % of the regions
        and costs up to 0.6 points, so it stays off there.
    threshold : float, optional
        Threshold for soft coarse maps (probabilities in [0, 1], or 0..255 bytes).
    fusion : bool, optional
        Soft fusion of the model with the coarse probability map. Where the coarse input is a soft
        map with more than two values, a pixel is foreground where
        ``fusion_weight * logit + evidence > 0``, ``logit`` being the model's and ``evidence`` the
        coarse map's log-odds against its threshold (:func:`samedenhancer.core.coarse_log_odds`):
        the two segmenters' log-odds add up (with weight 1 this is ``mean(sigmoid(logit), p) >
        0.5``). The model's logits are large (about +-30) away from its boundary and small near
        it, so the model decides the extent of the lesion and the coarse map, at native
        resolution, decides the boundary inside the model's uncertain band (the model sees the
        image at 256 px). Inert on label maps and on binary soft maps. ``None`` (default): on for
        the ``"box"`` policy, off for the others.
    fusion_weight : float
        Weight of the model's logits in the fusion (> 0).
    box_rounds : int, optional
        Box iteration: up to this many extra decoder calls per region, each prompted with the box
        of the previous refined (fused) mask (its largest merged region, METHOD.md §1, with the
        usual box margin). A region stops as soon as its box moves by no more than
        ``box_tolerance`` times its longer side (at least one pixel). ``None`` (default): 2 rounds
        for the ``"box"`` policy when soft fusion runs (the coarse probabilities anchor the mask
        each new box comes from), 0 otherwise: on a label map the re-box follows the model's own
        mask and its errors compound (thyroid DDTI, corrupted masks: -0.6 Dice, 15 -> 23 % of
        images worse), and the point policies keep the paper's two stages.
    box_tolerance : float
        Relative box movement under which the iteration stops, in [0, 1].
    ipq_filter, ring_radius, box_margin, min_area, min_fraction
        Prompt-mining options, see :func:`samedenhancer.mine_prompts`.

    Examples
    --------
    >>> enhancer = Enhancer()                                    # doctest: +SKIP
    >>> refined = enhancer.enhance(image, coarse)                # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | Predictor = "litemedsam",
        providers: Sequence[str] | None = None,
        prior: str | Mapping[int, str] = "multi",
        policy: str | None = None,
        gate: Gate | bool | None = None,
        *,
        threshold: float | None = None,
        fusion: bool | None = None,
        fusion_weight: float = 1.0,
        box_rounds: int | None = None,
        box_tolerance: float = 0.02,
        ipq_filter: bool = False,
        ring_radius: int = 20,
        box_margin: float | None = None,
        min_area: int = 5,
        min_fraction: float = 0.1,
    ) -> None:
        if isinstance(model, (str, os.PathLike)):
            self.predictor = Predictor(model, providers=providers)
        elif all(hasattr(model, name) for name in ("encode", "decode", "upscale", "manifest")):
            if providers is not None:
                raise ValueError("providers cannot be given together with a ready Predictor")
            self.predictor = model
        else:
            raise TypeError(f"model must be a model name, a model folder or a Predictor, got {type(model).__name__}")
        if policy is None:
            policy = self.predictor.manifest.default_policy
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES} or None, got {policy!r}")
        if gate is True:
            gate = Gate()
        if not (gate is None or gate is False or isinstance(gate, Gate)):
            raise TypeError(f"gate must be a samedenhancer.Gate, True, False or None, got {type(gate).__name__}")
        if fusion is None:
            fusion = policy == "box"
        if not isinstance(fusion, (bool, np.bool_)):
            raise TypeError(f"fusion must be True, False or None, got {fusion!r}")
        if isinstance(fusion_weight, bool) or not isinstance(fusion_weight, numbers.Real) or not fusion_weight > 0:
            raise ValueError(f"fusion_weight must be a number > 0, got {fusion_weight!r}")
        if box_rounds is not None and (
            isinstance(box_rounds, bool) or not isinstance(box_rounds, numbers.Integral) or box_rounds < 0
        ):
            raise ValueError(f"box_rounds must be an integer >= 0 or None, got {box_rounds!r}")
        if box_rounds and policy != "box":
            raise ValueError(f"box_rounds applies to the 'box' policy only, got box_rounds={box_rounds} with policy {policy!r}")
        if isinstance(box_tolerance, bool) or not isinstance(box_tolerance, numbers.Real) or not 0 <= box_tolerance <= 1:
            raise ValueError(f"box_tolerance must be a number in [0, 1], got {box_tolerance!r}")
        self.policy = policy
        self.gate = gate
        self.threshold = threshold
        self.fusion = bool(fusion)
        self.fusion_weight = float(fusion_weight)
        self.box_rounds = None if box_rounds is None else int(box_rounds)
        self.box_tolerance = float(box_tolerance)
        self._mining = dict(
            prior=prior,
            ipq_filter=ipq_filter,
            ring_radius=ring_radius,
            box_margin=box_margin,
            min_area=min_area,
            min_fraction=min_fraction,
        )
        # Fail on bad mining options now rather than on the first image.
        mine_prompts(np.zeros((1, 1), np.uint8), threshold=None, **self._mining)

    # -- one image ---------------------------------------------------------------------------
    def mine(self, coarse: np.ndarray) -> Prompts:
        """Prompts for every region of every class of ``coarse`` (the C++ core, one call)."""
        return mine_prompts(coarse, threshold=self.threshold, **self._mining)

    def enhance(self, image: np.ndarray, coarse: np.ndarray, *, return_details: bool = False):
        """Refine ``coarse`` on ``image``.

        Parameters
        ----------
        image : ndarray, H x W or H x W x 3, uint8 / uint16 / float
        coarse : ndarray, H x W
            Label map (0 = background) or soft map, see :func:`samedenhancer.as_label_map`.
        return_details : bool
            Return an :class:`EnhanceResult` instead of the label map alone.

        Returns
        -------
        ndarray or EnhanceResult
            The refined label map, same shape and dtype as ``coarse`` (a soft map gives uint8).
        """
        start = time.perf_counter()
        prompts = self.mine(coarse)
        check_sizes(image, prompts.label_map)
        mined = time.perf_counter()
        embedding, preprocess_s, encode_s = None, 0.0, 0.0
        if len(prompts.class_ids):  # nothing to refine: no model call (an empty frame costs nothing)
            embedding, preprocess_s, encode_s = encode_timed(self.predictor, image)
        prepared = mined + preprocess_s
        return self._finish(embedding, prompts, coarse, (start, mined, prepared, prepared + encode_s), return_details)

    def refine_encoded(self, embedding, prompts: Prompts, coarse: np.ndarray, *, return_details: bool = False):
        """Decode and paste for an image already encoded (``embedding`` from
        ``self.predictor.encode``) with prompts from :meth:`mine`; the streaming path encodes the
        next frame while this runs."""
        now = time.perf_counter()
        return self._finish(embedding, prompts, coarse, (now, now, now, now), return_details)

    def _finish(self, embedding, prompts, coarse, clock, return_details):
        start, mined, prepared, encoded = clock  # perf_counter() at the start and after each stage
        if len(prompts.class_ids) == 0:
            result = EnhanceResult(
                mask=_like(prompts.label_map, coarse),
                policy=self.policy,
                regions=(),
                classes=prompts.classes,
                dropped_classes=prompts.dropped_classes,
                timings=Timings(mine=mined - start),
            )
            return result if return_details else result.mask
        evidence = coarse_log_odds(coarse, self.threshold) if self.fusion else None
        low_res, iou, stage1_low, stage1_iou = self._decode(embedding, prompts)
        logits = self.predictor.upscale(embedding, low_res)[:, 0]  # (R, H, W)
        if evidence is not None:
            logits = self.fusion_weight * logits + evidence
        boxes, rounds = prompts.boxes, np.ones(len(prompts.class_ids), np.int64)
        if self._rounds(evidence is not None):
            logits, iou, boxes, rounds = self._iterate(embedding, prompts, logits, iou, evidence)
        decoded = time.perf_counter()
        stage1 = None
        if return_details and stage1_low is not None:
            stage1 = self.predictor.upscale(embedding, stage1_low)[:, 0] > 0
        mask, regions = self._paste(prompts, logits, iou, stage1, stage1_iou, boxes, rounds, self._gate(prompts))
        pasted = time.perf_counter()
        result = EnhanceResult(
            mask=_like(mask, coarse),
            policy=self.policy,
            regions=regions,
            classes=prompts.classes,
            dropped_classes=prompts.dropped_classes,
            timings=Timings(mine=mined - start, preprocess=prepared - mined, encode=encoded - prepared,
                            decode=decoded - encoded, paste=pasted - decoded),
            fused=evidence is not None,
        )
        return result if return_details else result.mask

    def _gate(self, prompts: Prompts) -> Gate | None:
        """The gate for one image: ``gate``, or when it is None ``Gate()`` for the box policy on a
        map with more than one class."""
        if self.gate is None:
            return Gate() if self.policy == "box" and len(prompts.classes) > 1 else None
        return self.gate if isinstance(self.gate, Gate) else None  # False: off

    def _rounds(self, fused: bool) -> int:
        """Extra box rounds for one image: ``box_rounds``, or when it is None the default for the
        policy and for whether soft fusion ran."""
        if self.box_rounds is not None:
            return self.box_rounds
        return DEFAULT_BOX_ROUNDS if self.policy == "box" and fused else 0

    def _iterate(self, embedding, prompts: Prompts, logits, iou, evidence):
        """Box iteration: re-box every region from its refined mask and decode the regions whose box
        moved (one batched call per round) until no box moves or ``box_rounds`` are spent."""
        logits, iou = logits.copy(), iou.copy()
        boxes = prompts.boxes.copy()
        rounds = np.ones(len(boxes), np.int64)
        active = np.ones(len(boxes), bool)
        for _ in range(self._rounds(evidence is not None)):
            for i in np.flatnonzero(active):
                box = self._box_of(logits[i] > 0)
                side = max(boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1], 1)
                if box is None or np.abs(box - boxes[i]).max() <= max(self.box_tolerance * side, 1):
                    active[i] = False
                else:
                    boxes[i] = box
            moved = np.flatnonzero(active)
            if not len(moved):
                break
            low, new_iou = self.predictor.decode(embedding, boxes=boxes[moved].astype(np.float32))
            new = self.predictor.upscale(embedding, low[:, :1])[:, 0]
            if evidence is not None:
                new = self.fusion_weight * new + evidence
            logits[moved], iou[moved] = new, new_iou[:, 0]
            rounds[moved] += 1
        return logits, iou, boxes, rounds

    def _box_of(self, mask: np.ndarray) -> np.ndarray | None:
        """The box prompt of a refined mask: its largest merged region, mined as the coarse mask is
        (same MSFF filter and box margin); None when nothing survives."""
        ys, xs = np.nonzero(mask)
        if not len(ys):
            return None
        # Mine inside the mask's bounding box grown by the largest margin (10 px) so that the
        # margin is clipped where the image ends, exactly as on the whole image.
        y0, x0 = max(int(ys.min()) - 10, 0), max(int(xs.min()) - 10, 0)
        y1, x1 = min(int(ys.max()) + 11, mask.shape[0]), min(int(xs.max()) + 11, mask.shape[1])
        crop = mask[y0:y1, x0:x1].view(np.uint8)
        options = dict(self._mining, prior="single")
        found = mine_prompts(crop, threshold=None, **options)
        if not len(found.boxes):
            return None
        return found.boxes[0] + np.array([x0, y0, x0, y0], found.boxes.dtype)

    def _decode(self, embedding, prompts: Prompts):
        """One batched decoder call per stage; returns final (R,1,h,w) logits and (R,) IoU, and the
        stage-1 logits/IoU of the point policies."""
        points = prompts.points.astype(np.float32)
        labels = prompts.point_labels
        boxes = prompts.boxes.astype(np.float32)
        decode = self.predictor.decode
        stage1_low = stage1_iou = None
        if self.policy in ("points", "hierarchical"):
            low, iou = decode(embedding, point_coords=points, point_labels=labels, multimask_output=True)
            best = np.argmax(iou, axis=1)
            rows = np.arange(len(best))
            stage1_low, stage1_iou = low[rows, best][:, None], iou[rows, best]
            if self.policy == "points":
                return stage1_low, stage1_iou, stage1_low, stage1_iou
        if self.policy == "box":
            low, iou = decode(embedding, boxes=boxes)
        else:  # "points+box" and stage 2 of "hierarchical"
            low, iou = decode(embedding, point_coords=points, point_labels=labels, boxes=boxes)
        return low[:, :1], iou[:, 0], stage1_low, stage1_iou

    def _paste(self, prompts: Prompts, logits: np.ndarray, iou: np.ndarray, stage1, stage1_iou, boxes, rounds,
               gate: Gate | None):
        """Per-class union of region masks; overlaps between classes go to the higher logit; gated
        regions and dropped classes keep their coarse pixels."""
        label_map = prompts.label_map
        out_dtype = np.result_type(label_map.dtype, np.uint8)
        regions: list[RegionResult] = []
        best_logit = np.full(label_map.shape, -np.inf, np.float32)
        best_class = np.zeros(label_map.shape, out_dtype)
        kept = np.zeros(label_map.shape, bool)  # pixels fixed to the coarse label by the gate
        for i, class_id in enumerate(prompts.class_ids.tolist()):
            region_logits = logits[i]
            refined = region_logits > 0
            coarse_region = prompts.regions == i + 1
            agreement = dice(refined, coarse_region)
            fell_back = gate is not None and (float(iou[i]) < gate.min_iou or agreement < gate.min_agreement)
            if fell_back:
                kept |= coarse_region
            else:
                wins = refined & (region_logits > best_logit)
                best_logit[wins] = region_logits[wins]
                best_class[wins] = class_id
            regions.append(
                RegionResult(
                    class_id=class_id,
                    box=boxes[i],
                    points=prompts.points[i],
                    point_labels=prompts.point_labels[i],
                    mask=refined,
                    iou=float(iou[i]),
                    stage1_mask=None if stage1 is None else stage1[i],
                    stage1_iou=float("nan") if stage1_iou is None else float(stage1_iou[i]),
                    agreement=agreement,
                    fell_back=fell_back,
                    rounds=int(rounds[i]),
                )
            )
        mask = best_class
        mask[kept] = label_map[kept]
        if len(prompts.dropped_classes):
            dropped = np.isin(label_map, prompts.dropped_classes)
            mask[dropped] = label_map[dropped]
        return mask, tuple(regions)

    # -- a stream of frames ------------------------------------------------------------------
    def stream(self, frames, coarse_masks, *, max_latency_ms: float | None = None, drop: str = "oldest",
               queue_size: int = 1, pipelined: bool = True):
        """Refine a stream of frames: a generator of one :class:`~samedenhancer.streaming.FrameResult`
        per input frame, in input order.

        Parameters
        ----------
        frames : iterable of ndarray, video or DICOM path, or int
            Images as for :meth:`enhance`, a video file / capture device index read with OpenCV, or a
            DICOM cine loop (``.dcm``, read with pydicom); frames come as RGB or grey.
        coarse_masks : iterable of ndarray, folder, video or DICOM path
            One coarse mask per frame (a folder: files in name order; a video or multi-frame DICOM:
            its first channel).
        max_latency_ms : float, optional
            Budget from a frame being taken from the source to its result; older frames are dropped
            (reported with status ``"dropped"``). Needs ``drop="oldest"``.
        drop : {"oldest", "none"}
            ``"oldest"``: a full queue discards its oldest frame (live devices); ``"none"``: every
            frame is refined and comes out, the pipeline waits for the consumer.
        queue_size : int
            Frames waiting between the encoder and decoder stages, and between the decoder and the
            consumer.
        pipelined : bool
            Encode the next frame while the current one is decoded (threads). ``False`` runs the
            stages one after the other in the consumer's thread (for measurements).

        Yields
        ------
        FrameResult
            ``index``, ``status`` ("ok", "dropped", "error"), ``mask``, per-stage ``timings``,
            ``latency`` and ``error``. A bad frame gives an error result and the stream goes on; a
            frame whose coarse mask has no region costs no model call.

        Notes
        -----
        Closing the generator early (``close()``, ``break`` out of a ``for`` loop) stops and joins
        its threads. See :mod:`samedenhancer.streaming` for the pipeline.

        Examples
        --------
        >>> for result in Enhancer().stream("video.avi", "masks/", drop="none"):  # doctest: +SKIP
        ...     print(result.index, result.status, result.latency)
        """
        from ..streaming import run_stream

        return run_stream(self, frames, coarse_masks, max_latency_ms=max_latency_ms, drop=drop, queue_size=queue_size,
                          pipelined=pipelined)

    # -- a volume ----------------------------------------------------------------------------
    def enhance_volume(self, image: np.ndarray, coarse: np.ndarray, spacing=None, *, axis: int = 2,
                       mining: str = "3d", return_details: bool = False):
        """Refine a 3-D coarse label volume (a NIfTI scan, :func:`samedenhancer.io.read_volume`, or a
        DICOM series, :func:`samedenhancer.io.read_dicom_series`).

        Parameters
        ----------
        image : ndarray, 3-D
            The scan (grey), same shape as ``coarse``.
        coarse : ndarray, 3-D
            Label volume or soft volume.
        spacing : sequence of 3 float, optional
            Voxel size (mm) along the three axes, kept in the result. The mining works on voxel
            counts, which any spacing scales alike.
        axis : int
            Axis of the slices (2: the third voxel axis, NIfTI's usual slice axis).
        mining : {"3d", "2d"}
            ``"3d"`` (default): regions from the 3-D connected components of the coarse volume,
            the domain prior per 3-D component, gaps inside a structure's extent filled from the
            neighbouring slices, each slice prompted from its part of the kept regions
            (:mod:`samedenhancer.enhancer.volume`). ``"2d"``: every slice mined on its own, as
            :meth:`enhance` does.
        return_details : bool
            Return a :class:`VolumeResult` instead of the label volume alone.

        Returns
        -------
        ndarray or VolumeResult
            The refined volume, same shape as ``coarse`` and in the dtype :meth:`enhance` gives.
            Slices without any coarse region cost no model call.
        """
        image, coarse = np.asarray(image), np.asarray(coarse)
        if coarse.ndim != 3 or image.shape != coarse.shape:
            raise ValueError(f"image and coarse must be 3-D volumes of the same shape, got {image.shape} and {coarse.shape}")
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not -3 <= axis < 3:
            raise ValueError(f"axis must be 0, 1 or 2 (or -3..-1), got {axis!r}")
        if mining not in ("3d", "2d"):
            raise ValueError(f"mining must be '3d' or '2d', got {mining!r}")
        if spacing is not None:
            values = np.asarray(spacing, dtype=float).ravel() if np.ndim(spacing) == 1 else None
            if values is None or len(values) != 3 or not (np.isfinite(values) & (values > 0)).all():
                raise ValueError(f"spacing must be three positive numbers (mm per voxel along each axis), got {spacing!r}")
            spacing = tuple(float(v) for v in values)
        axis = int(axis) % 3
        if mining == "3d":
            from .volume import refine_volume

            results = refine_volume(self, image, coarse, axis)
        else:
            results = []
            for index in range(coarse.shape[axis]):
                try:
                    results.append(self.enhance(np.take(image, index, axis), np.take(coarse, index, axis), return_details=True))
                except ValueError as error:
                    raise ValueError(f"slice {index} along axis {axis}: {error}") from error
        mask = np.stack([r.mask for r in results], axis=axis)
        return VolumeResult(mask, axis, tuple(results), spacing) if return_details else mask

    # -- many images -------------------------------------------------------------------------
    def enhance_batch(self, images: Iterable[np.ndarray], coarse_masks: Iterable[np.ndarray]) -> list[BatchItem]:
        """Refine many images with one engine. A bad item is reported in its :class:`BatchItem`
        and the batch goes on: no result is lost."""
        items: list[BatchItem] = []
        images, coarse_masks = list(images), list(coarse_masks)
        if len(images) != len(coarse_masks):
            raise ValueError(f"images and coarse_masks must have the same length, got {len(images)} and {len(coarse_masks)}")
        for index, (image, coarse) in enumerate(zip(images, coarse_masks)):
            try:
                result = self.enhance(image, coarse, return_details=True)
            except (ValueError, TypeError, RuntimeError) as error:
                items.append(BatchItem(index, None, error))
                continue
            items.append(BatchItem(index, result, None))
        return items


def encode_timed(predictor, image: np.ndarray):
    """``(embedding, preprocess_seconds, encode_seconds)`` of ``predictor`` on ``image``; a
    duck-typed predictor without ``prepare``/``encode_prepared`` counts all of it as encoding."""
    start = time.perf_counter()
    if not hasattr(predictor, "prepare"):
        embedding = predictor.encode(image)
        return embedding, 0.0, time.perf_counter() - start
    prepared = predictor.prepare(image)
    mid = time.perf_counter()
    embedding = predictor.encode_prepared(prepared)
    return embedding, mid - start, time.perf_counter() - mid


def check_sizes(image: np.ndarray, label_map: np.ndarray) -> None:
    """Raise unless ``image`` is a valid image of the same height and width as ``label_map``."""
    check_image(image)
    if image.shape[:2] != label_map.shape:
        raise ValueError(f"coarse mask shape {label_map.shape} does not match image shape {image.shape[:2]}")


def _like(mask: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """``mask`` in the dtype of ``coarse`` (soft maps come back as uint8 label maps)."""
    coarse = np.asarray(coarse)
    if coarse.dtype.kind in "biu":
        return mask.astype(coarse.dtype, copy=False)
    return mask.astype(np.uint8, copy=False)


def enhance(image: np.ndarray, coarse: np.ndarray, *, model: str = "litemedsam", return_details: bool = False, **options):
    """One-shot :meth:`Enhancer.enhance` (builds an engine per call: use :class:`Enhancer` for
    many images)."""
    return Enhancer(model, **options).enhance(image, coarse, return_details=return_details)


def enhance_batch(images, coarse_masks, *, model: str = "litemedsam", **options) -> list[BatchItem]:
    """One-shot :meth:`Enhancer.enhance_batch` with one engine for the whole batch."""
    return Enhancer(model, **options).enhance_batch(images, coarse_masks)
