"""The SAMedEnhancer pipeline: coarse label map in, refined label map out.

One image encode, prompts mined for all classes in one call of the C++ core, all regions of all
classes decoded in one batched decoder call per stage, logits pasted back at native resolution,
overlaps between classes resolved by the higher logit (METHOD.md §3). With the box policy
(LiteMedSAM's default) a soft coarse map is fused with the model's logits and each region's box is
re-mined from its refined mask until it stops moving (``Enhancer(fusion=..., box_rounds=...)``), and
on a map with several classes a no-harm gate keeps the coarse region where the refined one disagrees
with it (``Enhancer(gate=...)``).

The package follows the data flow: :mod:`.options` (what runs, decided in one place),
:mod:`.decoding` (prompt policies, region logits at native resolution, soft fusion, box
iteration), :mod:`.paste` (regions back into one label map, the gate) and :mod:`.results`.

References
----------
.. [1] SAMedEnhancer, "Generic medical image segmentation enhancement by adapting Segment Anything
   Model" (the method; ``../shared/papers/samedenhancer.txt``).
"""

from __future__ import annotations

import os
import time
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..core import MiningOptions, Prompts, coarse_log_odds, mine_prompts
from ..predictor import Predictor
from ..transforms import check_image
from ..validation import integer
from . import decoding
from .options import DEFAULT_BOX_ROUNDS, POLICIES, Gate, Options
from .paste import paste
from .results import BatchItem, Encoded, EnhanceResult, RegionResult, Timings, VolumeResult

__all__ = [
    "DEFAULT_BOX_ROUNDS",
    "POLICIES",
    "BatchItem",
    "Encoded",
    "EnhanceResult",
    "Enhancer",
    "Gate",
    "RegionResult",
    "Timings",
    "VolumeResult",
    "enhance",
    "enhance_batch",
]

#: The duck-typed predictor interface the Enhancer needs (a :class:`Predictor` has it).
PREDICTOR_METHODS = ("encode", "decode", "upscale_window", "manifest")


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
    mining : MiningOptions, optional
        How prompts are mined (:class:`samedenhancer.MiningOptions`); ``prior``, ``ipq_filter``,
        ``ring_radius``, ``box_margin``, ``min_area`` and ``min_fraction`` may also be given
        directly as keywords.

    Examples
    --------
    >>> enhancer = Enhancer()                                    # doctest: +SKIP
    >>> refined = enhancer.enhance(image, coarse)                # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | Predictor = "litemedsam",
        providers: Sequence[str] | None = None,
        prior: str | Mapping[int, str] | None = None,
        policy: str | None = None,
        gate: Gate | bool | None = None,
        *,
        threshold: float | None = None,
        fusion: bool | None = None,
        fusion_weight: float = 1.0,
        box_rounds: int | None = None,
        box_tolerance: float = 0.02,
        mining: MiningOptions | None = None,
        **mining_options,
    ) -> None:
        if prior is not None:
            mining_options["prior"] = prior
        if mining is not None and not isinstance(mining, MiningOptions):
            raise TypeError(f"mining must be a samedenhancer.MiningOptions, got {type(mining).__name__}")
        unknown = sorted(set(mining_options) - set(MiningOptions.__dataclass_fields__))
        if unknown:
            raise TypeError(f"Enhancer got unexpected keyword arguments {unknown}")
        mining = (mining or MiningOptions()).replace(**mining_options) if mining_options else mining
        if isinstance(model, (str, os.PathLike)):
            predictor = Predictor(model, providers=providers)
        elif all(hasattr(model, name) for name in PREDICTOR_METHODS):
            if providers is not None:
                raise ValueError("providers cannot be given together with a ready Predictor")
            predictor = model
        else:
            raise TypeError(f"model must be a model name, a model folder or a Predictor, got {type(model).__name__}")
        self.options = Options.make(
            predictor.manifest.default_policy, policy=policy, gate=gate, threshold=threshold, fusion=fusion,
            fusion_weight=fusion_weight, box_rounds=box_rounds, box_tolerance=box_tolerance, mining=mining,
        )
        self.predictor = predictor

    @property
    def policy(self) -> str:
        """The prompt policy in use (the model's default unless one was given)."""
        return self.options.policy

    @property
    def threshold(self) -> float | None:
        """The soft-map threshold given to the constructor."""
        return self.options.threshold

    # -- one image, in two halves -------------------------------------------------------------
    def mine(self, coarse: np.ndarray) -> Prompts:
        """Prompts for every region of every class of ``coarse`` (the C++ core, one call)."""
        return mine_prompts(coarse, self.options.mining, threshold=self.options.threshold)

    def encode(self, image: np.ndarray, coarse: np.ndarray, *, prompts: Prompts | None = None,
               embedding=None) -> Encoded:
        """The first half of :meth:`enhance`: mine ``coarse``'s prompts (or take ``prompts``, mined
        elsewhere from the same coarse mask, e.g. from a 3-D region) and encode ``image`` unless no
        region was found (then the model is not called) or its ``embedding`` is given (from
        ``self.predictor.encode(image)``, e.g. cached to refine one image in several ways)."""
        start = time.perf_counter()
        if prompts is None:
            prompts = self.mine(coarse)
        elif not isinstance(prompts, Prompts):
            raise TypeError(f"prompts must be samedenhancer.Prompts (from mine), got {type(prompts).__name__}")
        check_image(image)
        if image.shape[:2] != prompts.label_map.shape:
            raise ValueError(f"coarse mask shape {prompts.label_map.shape} does not match image shape {image.shape[:2]}")
        mined = time.perf_counter()
        preprocess_s = encode_s = 0.0
        if embedding is not None or not len(prompts.class_ids):
            pass
        else:
            prepare = getattr(self.predictor, "prepare", None)
            if prepare is None:  # a duck-typed predictor without the split counts it all as encoding
                embedding = self.predictor.encode(image)
            else:
                prepared = prepare(image)
                preprocess_s = time.perf_counter() - mined
                embedding = self.predictor.encode_prepared(prepared)
            encode_s = time.perf_counter() - mined - preprocess_s
        return Encoded(prompts, coarse, embedding, Timings(mine=mined - start, preprocess=preprocess_s, encode=encode_s))

    def refine(self, encoded: Encoded, *, return_details: bool = False):
        """The second half of :meth:`enhance`: decode, fuse, iterate and paste an :class:`Encoded`
        image (from :meth:`encode`)."""
        if not isinstance(encoded, Encoded):
            raise TypeError(f"encoded must be an Encoded (from Enhancer.encode), got {type(encoded).__name__}")
        options, prompts, coarse = self.options, encoded.prompts, encoded.coarse
        start = time.perf_counter()
        if len(prompts.class_ids) == 0:
            mask, regions, fused = _like(prompts.label_map, coarse), (), False
            decoded = start
        else:
            embedding = encoded.embedding
            evidence = coarse_log_odds(coarse, options.threshold) if options.fusion else None
            weight = options.fusion_weight if evidence is not None else 1.0
            low, iou, stage1_low, stage1_iou = decoding.decode(self.predictor, embedding, prompts, options.policy)
            regions = decoding.RegionSource(self.predictor, embedding, low, prompts.tight_boxes, evidence, weight)
            boxes, rounds = prompts.boxes, np.ones(len(prompts.class_ids), np.int64)
            extra = options.rounds_for(evidence is not None)
            if extra:
                iou, boxes, rounds = decoding.iterate_boxes(
                    self.predictor, embedding, prompts, regions, iou, extra, options.box_tolerance, options.mining,
                )
            decoded = time.perf_counter()
            stage1 = None
            if return_details and stage1_low is not None:
                stage1 = decoding.RegionSource(self.predictor, embedding, stage1_low, prompts.tight_boxes, None, 1.0)
            mask, regions = paste(prompts, regions, iou, boxes, rounds, options.gate_for(prompts), stage1, stage1_iou)
            mask, fused = _like(mask, coarse), evidence is not None
        if not return_details:
            return mask
        pasted = time.perf_counter()
        t = encoded.timings
        return EnhanceResult(
            mask=mask,
            policy=options.policy,
            regions=regions,
            classes=prompts.classes,
            dropped_classes=prompts.dropped_classes,
            timings=Timings(mine=t.mine, preprocess=t.preprocess, encode=t.encode, decode=decoded - start,
                            paste=pasted - decoded),
            fused=fused,
        )

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
        return self.refine(self.encode(image, coarse), return_details=return_details)

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
        axis = integer(axis, "axis", -3, 2) % 3
        if mining not in ("3d", "2d"):
            raise ValueError(f"mining must be '3d' or '2d', got {mining!r}")
        if spacing is not None:
            values = np.asarray(spacing, dtype=float).ravel() if np.ndim(spacing) == 1 else None
            if values is None or len(values) != 3 or not (np.isfinite(values) & (values > 0)).all():
                raise ValueError(f"spacing must be three positive numbers (mm per voxel along each axis), got {spacing!r}")
            spacing = tuple(float(v) for v in values)
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
        """Refine many images with one engine. Any failure of one item (bad input, an image the
        model cannot take, an engine error) is reported in its :class:`BatchItem` and the batch
        goes on: no result is lost."""
        items: list[BatchItem] = []
        images, coarse_masks = list(images), list(coarse_masks)
        if len(images) != len(coarse_masks):
            raise ValueError(f"images and coarse_masks must have the same length, got {len(images)} and {len(coarse_masks)}")
        for index, (image, coarse) in enumerate(zip(images, coarse_masks)):
            try:
                result = self.enhance(image, coarse, return_details=True)
            except Exception as error:  # one item's failure is that item's result
                items.append(BatchItem(index, None, error))
                continue
            items.append(BatchItem(index, result, None))
        return items


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
