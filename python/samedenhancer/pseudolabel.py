"""Pseudo-label mode: refine a segmenter's pseudo-labels and say which ones a training loop should
trust.

Semi-supervised training (self-training, cross pseudo supervision) feeds a model's own predictions on
unlabelled images back as labels. This module refines
each pseudo-label with an :class:`~samedenhancer.Enhancer` and reviews the result: how many regions
were refined, whether the no-harm gate sent any back, the decoder's predicted IoU, and how much the
refined label agrees with the input. A fixed, stated rule turns that into a keep / flag verdict a
training loop can filter on (``samedenhancer pseudolabel`` writes it as ``manifest.csv``).

Examples
--------
>>> from samedenhancer import Enhancer, data
>>> from samedenhancer.pseudolabel import pseudolabel
>>> sample = data.fundus()                    # a segmenter's probability map as the pseudo-label
>>> label = pseudolabel(sample.image, sample.coarse, enhancer=Enhancer(threshold=sample.threshold))
>>> label.review.verdict, label.review.regions, label.mask.max()
('keep', 1, np.uint8(255))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from .embeddings import EmbeddingStore
from .enhancer import Enhancer, EnhanceResult
from .metrics import dice
from .validation import flag, instance, number

__all__ = ["PseudoLabel", "Review", "Rule", "pseudolabel", "review"]


@dataclass(frozen=True)
class Rule:
    """When a refined pseudo-label is kept.

    A pseudo-label is flagged when the refined label's Dice with the input label
    (``agreement``, the mean over classes) is below ``min_agreement`` — refinement and segmenter
    disagree, so at least one of them is wrong —, when the lowest predicted IoU of its regions is
    below ``min_iou``, or (``flag_gate``) when the no-harm gate sent a region back to the input.
    Empty pseudo-labels (nothing to refine) are kept: an empty label is a statement a training
    loop may want. Where (nearly) every image holds the target, an empty pseudo-label is more often
    a target the segmenter missed: ``flag_empty`` flags it. ``min_iou`` is 0 by default because
    LiteMedSAM's predicted IoU barely ranks harm (the gate AUC column of
    ``benchmarks/QUALITY.md``); raise it for models whose IoU head is trained.
    """

    min_agreement: float = 0.7
    min_iou: float = 0.0
    flag_gate: bool = True
    flag_empty: bool = False

    def __post_init__(self) -> None:
        for name in ("min_agreement", "min_iou"):
            object.__setattr__(self, name, number(getattr(self, name), f"Rule {name}", 0, 1))
        for name in ("flag_gate", "flag_empty"):
            object.__setattr__(self, name, flag(getattr(self, name), f"Rule {name}"))

    def __str__(self) -> str:
        gate = "; flag if the gate fired" if self.flag_gate else ""
        empty = "; flag empty labels" if self.flag_empty else ""
        return (f"keep if agreement >= {self.min_agreement:.2f} and min IoU prediction >= {self.min_iou:.2f}"
                f"{gate}{empty}")


@dataclass(frozen=True)
class Review:
    """What refinement did to one pseudo-label, and the verdict (one manifest row)."""

    classes: int  # foreground classes in the input pseudo-label
    regions: int  # merged regions decoded
    gate_fired: int  # regions the gate sent back to the input
    dropped_classes: int  # classes with no region after MSFF (returned unchanged)
    fused: bool  # soft fusion with the input probability ran
    min_iou_prediction: float  # lowest predicted IoU over regions (NaN: no region)
    mean_iou_prediction: float  # NaN: no region
    agreement: float  # Dice(refined, input label), mean over classes
    min_region_agreement: float  # lowest Dice of a refined region with its input region (NaN: none)
    verdict: str  # "keep" or "flag"
    reason: str  # which part of the rule decided

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def row(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PseudoLabel:
    """A refined pseudo-label (``mask``: in the input's encoding, see
    :class:`~samedenhancer.enhancer.MaskEncoding`), its review, and the Enhancer's full result."""

    mask: np.ndarray
    review: Review
    result: EnhanceResult


def review(result: EnhanceResult, pseudo_labels: np.ndarray, rule: Rule = Rule()) -> Review:
    """Review a refinement of the pseudo-label ``pseudo_labels`` (the input as a label map).

    Parameters
    ----------
    result : EnhanceResult
        From ``Enhancer.enhance(image, pseudo)``.
    pseudo_labels : ndarray, H x W
        The input pseudo-label as a label map, in the classes of ``result.labels`` (a soft map
        thresholded as the Enhancer did: ``result`` of an unchanged input has it as
        ``Prompts.label_map``).
    rule : Rule
    """
    instance(result, "result", EnhanceResult, "an EnhanceResult (from Enhancer.enhance)")
    instance(rule, "rule", Rule, "a samedenhancer.pseudolabel.Rule")
    labels = np.asarray(pseudo_labels)
    if labels.shape != result.labels.shape:
        raise ValueError(f"pseudo_labels must have the shape of the result {result.labels.shape}, got {labels.shape}")
    ious = np.array([r.iou for r in result.regions], float)
    region_agreement = np.array([r.agreement for r in result.regions], float)
    present = sorted((set(np.unique(result.labels).tolist()) | set(np.unique(labels).tolist())) - {0})
    agreement = float(np.mean([dice(result.labels == c, labels == c) for c in present])) if present else 1.0
    min_iou = float(ious.min()) if ious.size else float("nan")
    if rule.flag_empty and not labels.any():
        verdict, reason = "flag", "empty pseudo-label (flag_empty)"
    elif not result.regions:
        verdict, reason = "keep", "nothing to refine (empty pseudo-label or no region after MSFF)"
    elif agreement < rule.min_agreement:
        verdict, reason = "flag", f"agreement {agreement:.2f} < {rule.min_agreement:.2f}"
    elif min_iou < rule.min_iou:
        verdict, reason = "flag", f"IoU prediction {min_iou:.2f} < {rule.min_iou:.2f}"
    elif rule.flag_gate and result.gate_fired:
        verdict, reason = "flag", f"gate sent {result.gate_fired} of {len(result.regions)} regions back"
    else:
        verdict, reason = "keep", f"agreement {agreement:.2f} >= {rule.min_agreement:.2f}" + (
            ", gate silent" if rule.flag_gate else "")
    return Review(
        classes=len(result.classes),
        regions=len(result.regions),
        gate_fired=int(result.gate_fired),
        dropped_classes=len(result.dropped_classes),
        fused=bool(result.fused),
        min_iou_prediction=min_iou,
        mean_iou_prediction=float(ious.mean()) if ious.size else float("nan"),
        agreement=float(agreement),
        min_region_agreement=float(region_agreement.min()) if region_agreement.size else float("nan"),
        verdict=verdict,
        reason=reason,
    )


def pseudolabel(image: np.ndarray, pseudo: np.ndarray, *, enhancer: Enhancer | None = None,
                rule: Rule = Rule(), embeddings: EmbeddingStore | None = None) -> PseudoLabel:
    """Refine one pseudo-label and review it.

    Parameters
    ----------
    image : ndarray, H x W or H x W x 3, uint8 / uint16 / float
    pseudo : ndarray, H x W
        The segmenter's output: a label map, or a soft map (thresholded with the enhancer's
        ``threshold``).
    enhancer : Enhancer, optional
        ``Enhancer()`` (LiteMedSAM, the default options) when omitted; pass one to share the model.
    rule : Rule
    embeddings : EmbeddingStore, optional
        Read the image's embedding from this store (or encode and store it): the rounds of a
        pseudo-label loop over the same images encode each image once. With ``enhancer``, its
        model and options are used with this store.

    Returns
    -------
    PseudoLabel
    """
    if enhancer is None:
        enhancer = Enhancer(embeddings=embeddings)
    elif embeddings is not None:
        instance(enhancer, "enhancer", Enhancer, "a samedenhancer.Enhancer or None")
        enhancer = Enhancer(enhancer.predictor, enhancer.options, embeddings=embeddings)
    encoded = enhancer.encode(image, pseudo)  # the pseudo-label read and thresholded once, here
    result = enhancer.refine(encoded)
    return PseudoLabel(result.mask, review(result, encoded.prompts.label_map, rule), result)
