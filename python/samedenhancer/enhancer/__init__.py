"""The SAMedEnhancer pipeline: coarse label map in, refined label map out.

One image encode, prompts mined for all classes in one call of the C++ core, all regions of all
classes decoded in one batched decoder call per stage, logits pasted back at native resolution,
overlaps between classes resolved by the higher logit. With the box policy (LiteMedSAM's default) a
soft coarse map is fused with the model's logits and each region's box is re-mined from its refined
mask until it stops moving, and on a map with several classes a no-harm gate keeps the coarse region
where the refined one disagrees with it (:class:`EnhanceOptions`).

The package follows the data flow: :mod:`.options` (what runs, decided in one place),
:mod:`.decoding` (prompt policies, region logits at native resolution, soft fusion, box
iteration), :mod:`.paste` (regions back into one label map, rings, the gate), :mod:`.volume`
(3-D mining of a coarse volume) and :mod:`.results`.

References
----------
.. [1] Anonymous, "Generic medical image segmentation enhancement by adapting Segment Anything
   Model" (SAMedEnhancer; under double-blind review): the method.
.. [2] Ma, J. et al., "Segment anything in medical images", Nat. Commun. 15, 654 (2024) (MedSAM,
   LiteMedSAM's teacher).
"""

from __future__ import annotations

import os
import time
from typing import Iterable, Sequence

import numpy as np

from ..core import Prompts, coarse_log_odds, mine_prompts
from ..embeddings import EmbeddingStore
from ..predictor import Predictor, as_predictor
from ..transforms import check_image
from ..validation import instance, integer, spacing as check_spacing
from . import decoding
from .options import POLICIES, EnhanceOptions, Gate
from .paste import paste
from .results import BatchItem, Encoded, EnhanceResult, MaskEncoding, RegionResult, Timings, VolumeResult
from .volume import refine_volume

__all__ = [
    "POLICIES",
    "BatchItem",
    "Encoded",
    "EnhanceOptions",
    "EnhanceResult",
    "Enhancer",
    "Gate",
    "MaskEncoding",
    "RegionResult",
    "Timings",
    "VolumeResult",
]

#: The duck-typed predictor interface the Enhancer needs (a :class:`Predictor` has it).
_PREDICTOR_METHODS = ("encode", "decode", "upscale_window", "manifest")


class Enhancer:
    """Refine coarse segmentation masks with a Segment-Anything-family model.

    Parameters
    ----------
    model : str, path or Predictor
        Model name or export folder (``"litemedsam"``, the embedded default, is exported on first
        use), or a ready :class:`Predictor` to share one engine.
    options : EnhanceOptions, optional
        How to refine (:class:`EnhanceOptions`); its fields may also be given as keywords
        (``Enhancer(threshold=127, prior="single")``), which replace those of ``options``.
    providers : sequence of str, optional
        ONNX Runtime execution providers (CPU when omitted; ``"cuda"``, ``"tensorrt"``).
    threads : int, optional
        ONNX Runtime threads per operator (default: one per core).
    embeddings : EmbeddingStore, optional
        Read each image's embedding from this store and store the new ones (an image is encoded
        once across runs, processes and commands); the masks are those of a run without it.

    Notes
    -----
    Every call returns a result object whose ``mask`` is the refined mask in the encoding the
    coarse mask came in (:class:`MaskEncoding`, one rule for the API, the stream, pseudo-labels and
    every command):

    - a label map (bool, or an integer dtype without ``threshold``) keeps its dtype and labels: 0/1
      stays 0/1, a 0/255 mask stays 0/255, a multi-class map keeps its classes, bool stays bool;
    - a soft map, thresholded (float probabilities, or uint8 0..255 with ``threshold``), comes back
      as a binary uint8 mask of 0 and 255 (so a 0/255 mask given with a threshold stays 0/255).

    ``result.labels`` is the same map in the classes :func:`~samedenhancer.as_label_map` reads (a
    thresholded map's foreground is 1), to compare with other label maps.

    A region that encloses background (a ring, such as the myocardium around an unlabelled cavity)
    stays a ring: the model's answer never fills the hole, and where it no longer agrees with the
    coarse ring the coarse ring is kept.

    The quality of each option on real data is reported in ``benchmarks/QUALITY.md``.

    Examples
    --------
    >>> import numpy as np
    >>> from samedenhancer import Enhancer, data
    >>> sample = data.fundus()                      # an image with a 0..255 probability map
    >>> enhancer = Enhancer(threshold=sample.threshold)
    >>> result = enhancer.enhance(sample.image, sample.coarse)
    >>> result.mask.dtype, np.unique(result.mask).tolist(), np.unique(result.labels).tolist()
    (dtype('uint8'), [0, 255], [0, 1])
    >>> len(result.regions), result.fused
    (1, True)
    """

    def __init__(self, model: str | os.PathLike | Predictor = "litemedsam", options: EnhanceOptions | None = None, *,
                 providers: Sequence[str] | None = None, threads: int | None = None,
                 embeddings: EmbeddingStore | None = None, **option_fields) -> None:
        if options is not None:
            instance(options, "options", EnhanceOptions, "a samedenhancer.EnhanceOptions")
        options = options or EnhanceOptions()
        if option_fields:
            options = options.replace(**option_fields)
        self.predictor = as_predictor(model, providers=providers, threads=threads, needs=_PREDICTOR_METHODS,
                                      embeddings=embeddings)
        self.options = options.for_model(self.predictor.manifest.default_policy)

    # -- one image, in two halves -------------------------------------------------------------
    def mine(self, coarse: np.ndarray) -> Prompts:
        """Prompts for every region of every class of ``coarse`` (the C++ core, one call)."""
        self.options.check_size(np.shape(coarse), "coarse")
        return mine_prompts(coarse, self.options.mining, threshold=self.options.threshold)

    def encode(self, image: np.ndarray, coarse: np.ndarray, *, prompts: Prompts | None = None,
               embedding=None) -> Encoded:
        """The first half of :meth:`enhance`: read ``coarse`` once (its prompts, its encoding and,
        for soft fusion, its evidence) and encode ``image``.

        Parameters
        ----------
        image : ndarray, H x W or H x W x 3
        coarse : ndarray, H x W
            As for :meth:`enhance`.
        prompts : Prompts, optional
            Prompts mined elsewhere from the same coarse mask (e.g. from a 3-D region).
        embedding : ImageEmbedding, optional
            ``self.predictor.encode(image)``, when already computed (e.g. cached to refine one
            image in several ways); then nothing is encoded. Without any region the model is not
            called either.

        Returns
        -------
        Encoded
        """
        start = time.perf_counter()
        check_image(image)
        self.options.check_size(image.shape, "image")
        if prompts is None:
            prompts = self.mine(coarse)
        else:
            instance(prompts, "prompts", Prompts, "samedenhancer.Prompts (from mine)")
        if image.shape[:2] != prompts.label_map.shape:
            raise ValueError(f"coarse mask shape {prompts.label_map.shape} does not match image shape {image.shape[:2]}")
        self.options.check_classes(prompts)
        # the coarse map's evidence for soft fusion, read once with the same threshold as the mining
        evidence = coarse_log_odds(coarse, self.options.threshold) if self.options.fusion and len(prompts) else None
        mined = time.perf_counter()
        preprocess_s = encode_s = 0.0
        if embedding is None and len(prompts.class_ids):
            prepare = getattr(self.predictor, "prepare", None)
            if prepare is None:  # a duck-typed predictor without the split counts it all as encoding
                embedding = self.predictor.encode(image)
            else:
                prepared = prepare(image)
                preprocess_s = time.perf_counter() - mined
                embedding = self.predictor.encode_prepared(prepared)
            encode_s = time.perf_counter() - mined - preprocess_s
        encoding = MaskEncoding.of(np.asarray(coarse).dtype, self.options.threshold)
        return Encoded(prompts, encoding, evidence, embedding, Timings(mine=mined - start, preprocess=preprocess_s,
                                                                     encode=encode_s))

    def refine(self, encoded: Encoded) -> EnhanceResult:
        """The second half of :meth:`enhance`: decode, fuse, iterate and paste an :class:`Encoded`
        image (from :meth:`encode`)."""
        instance(encoded, "encoded", Encoded, "an Encoded (from Enhancer.encode)")
        options, prompts = self.options, encoded.prompts
        start = time.perf_counter()
        if len(prompts.class_ids) == 0:
            labels, regions, fused = prompts.label_map.copy(), (), False  # never the caller's array
            decoded = start
        else:
            embedding, evidence = encoded.embedding, encoded.evidence
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
            if stage1_low is not None:
                stage1 = decoding.RegionSource(self.predictor, embedding, stage1_low, prompts.tight_boxes, None, 1.0)
            labels, regions = paste(prompts, regions, iou, boxes, rounds, options.gate_for(prompts), stage1, stage1_iou)
            fused = evidence is not None
        mask = encoded.encoding.apply(labels)
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
            labels=labels,
        )

    def enhance(self, image: np.ndarray, coarse: np.ndarray) -> EnhanceResult:
        """Refine ``coarse`` on ``image``.

        Parameters
        ----------
        image : ndarray, H x W or H x W x 3, uint8 / uint16 / float
        coarse : ndarray, H x W
            Label map (0 = background) or soft map, see :func:`samedenhancer.as_label_map`.

        Returns
        -------
        EnhanceResult
            ``mask``: the refined mask, in the coarse mask's encoding (see the class notes);
            ``labels``: the same in the coarse map's classes; per region the prompts, the predicted
            IoU and whether the gate fired; timings.
        """
        return self.refine(self.encode(image, coarse))

    # -- a volume ----------------------------------------------------------------------------
    def enhance_volume(self, image: np.ndarray, coarse: np.ndarray, spacing=None, *, axis: int = 2) -> VolumeResult:
        """Refine a 3-D coarse label volume (a NIfTI scan, :func:`samedenhancer.io.read_volume`, or a
        DICOM series, :func:`samedenhancer.io.read_dicom_series`).

        The coarse volume is mined as a volume (:mod:`samedenhancer.enhancer.volume`): regions are
        3-D connected components, the domain prior applies per 3-D component, gaps inside a
        structure's extent are filled from the neighbouring slices, and each slice is prompted from
        its part of the kept regions. Slices without any region cost no model call.

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

        Returns
        -------
        VolumeResult
            ``mask``: the refined volume, same shape as ``coarse``, in the encoding :meth:`enhance`
            gives; ``slices``: the :class:`EnhanceResult` of each slice.
        """
        image, coarse = np.asarray(image), np.asarray(coarse)
        if coarse.ndim != 3 or image.shape != coarse.shape:
            raise ValueError(f"image and coarse must be 3-D volumes of the same shape, got {image.shape} and {coarse.shape}")
        axis = integer(axis, "axis", -3, 2) % 3
        spacing = None if spacing is None else check_spacing(spacing, "spacing", 3)
        self.options.check_size(np.delete(coarse.shape, axis), "a slice of coarse")  # before the 3-D mining
        results = refine_volume(self, image, coarse, axis)
        return VolumeResult(np.stack([r.mask for r in results], axis=axis), axis, tuple(results), spacing)

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
                result = self.enhance(image, coarse)
            except Exception as error:  # one item's failure is that item's result
                items.append(BatchItem(index, None, error))
                continue
            items.append(BatchItem(index, result, None))
        return items
