"""The Enhancer's options: one validated object (:class:`EnhanceOptions`) that the Python API, the
command line, the stream and the Ray path all build and pass on, and the one place where the
per-image defaults are decided (which policy, whether soft fusion, box iteration and the no-harm
gate run)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..core import MiningOptions, Prompts, validate_threshold
from ..validation import at_most, choice, flag, instance, integer, number

#: Prompt policies. ``None`` takes the model manifest's default (what the model was trained with).
POLICIES = ("box", "points", "points+box", "hierarchical")
#: Extra box rounds of the "box" policy when ``box_rounds`` is not given.
DEFAULT_BOX_ROUNDS = 2
#: Default size guards (:class:`EnhanceOptions` ``max_pixels`` / ``max_classes``): an 8192 x 8192
#: image, and 256 classes in one coarse map. Refining works at native resolution, so its memory grows
#: with the pixels, and its time and memory with the classes (peak memory: ``benchmarks/RESULTS.md``).
MAX_PIXELS = 8192 * 8192
MAX_CLASSES = 256
#: The fields of :class:`~samedenhancer.MiningOptions` that :class:`EnhanceOptions` also takes as
#: keywords (``EnhanceOptions(prior="single")``).
_MINING_FIELDS = tuple(f.name for f in dataclasses.fields(MiningOptions))


@dataclass(frozen=True)
class Gate:
    """No-harm gate: keep the coarse region when the refinement looks unreliable.

    A region falls back to its coarse pixels when the decoder's predicted IoU is below
    ``min_iou`` or when the refined region's Dice with the coarse region is below
    ``min_agreement`` (it "disagrees wildly"). ``min_agreement`` also decides when a ring whose
    refinement answered its cavity keeps its coarse pixels (:mod:`samedenhancer.enhancer.rings`).

    Examples
    --------
    >>> Gate().min_agreement, Gate(min_iou=0.5).min_iou
    (0.5, 0.5)
    """

    min_iou: float = 0.0
    min_agreement: float = 0.5

    def __post_init__(self) -> None:
        for name in ("min_iou", "min_agreement"):
            object.__setattr__(self, name, number(getattr(self, name), f"Gate {name}", 0, 1))


@dataclass(frozen=True)
class EnhanceOptions:
    """How a coarse mask is refined: every choice of the method in one validated, picklable object.

    ``None`` means "the default for this model and this image", decided by the methods below, so the
    rules live in one place. Build it once and hand it to :class:`~samedenhancer.Enhancer`,
    :func:`~samedenhancer.stream` or :func:`~samedenhancer.distributed.enhance_dataset`;
    ``samedenhancer enhance`` builds the same object from its flags. What each choice does to the
    quality on real data: ``benchmarks/QUALITY.md``.

    Attributes
    ----------
    policy : {"box", "points", "points+box", "hierarchical"}, optional
        Which prompts the decoder gets. ``None``: the model's manifest default, ``"box"`` for
        LiteMedSAM (trained with boxes only), ``"hierarchical"`` (points, then points + box) for
        MedSAM2 / SAM2.1.
    threshold : float, optional
        Threshold of soft coarse maps: probabilities in [0, 1], or 0..255 bytes (e.g. 127).
    gate : Gate or bool, optional
        No-harm gate. ``None``: ``Gate()`` for the box policy on a map holding more than one class
        (nested anatomy, where a box can ask for the neighbouring structure), off otherwise.
    fusion : bool, optional
        Soft fusion: where the coarse map is a probability map, a pixel is foreground where
        ``fusion_weight * model logit + coarse log-odds > 0`` (the model decides the extent, the
        native-resolution map the boundary inside the model's uncertain band). ``None``: on for the
        box policy.
    fusion_weight : float
        Weight of the model's logits in the fusion (> 0).
    box_rounds : int, optional
        Box iteration: up to this many extra decoder calls per region, each with the box of the
        previous refined mask, until the box stops moving. ``None``: 2 for the box policy when soft
        fusion runs, else 0.
    box_tolerance : float
        Relative box movement, in [0, 1], under which the iteration stops.
    mining : MiningOptions
        How prompts are mined; its fields (``prior``, ``ipq_filter``, ``ring_radius``,
        ``box_margin``, ``min_area``, ``min_fraction``) may be given as keywords here too.
    max_pixels : int, optional
        Size guard: an image or coarse mask of more pixels is refused before any work (default
        ``MAX_PIXELS``, 8192 x 8192: refinement works at native resolution and its memory grows
        with the pixels). ``None`` removes the guard.
    max_classes : int, optional
        Size guard: a coarse map of more classes is refused before the model runs (default
        ``MAX_CLASSES``, 256; every class costs decoder calls). ``None`` removes the guard.

    Examples
    --------
    >>> options = EnhanceOptions(threshold=127, prior="single")
    >>> options.mining.prior, options.threshold
    ('single', 127.0)
    >>> EnhanceOptions(box_rounds=-1)
    Traceback (most recent call last):
    ...
    ValueError: box_rounds must be an integer >= 0, got -1
    """

    policy: str | None = None
    threshold: float | None = None
    gate: Gate | bool | None = None
    fusion: bool | None = None
    fusion_weight: float = 1.0
    box_rounds: int | None = None
    box_tolerance: float = 0.02
    mining: MiningOptions = field(default_factory=MiningOptions)
    max_pixels: int | None = MAX_PIXELS
    max_classes: int | None = MAX_CLASSES

    def __init__(self, policy: str | None = None, threshold: float | None = None, gate: Gate | bool | None = None,
                 fusion: bool | None = None, fusion_weight: float = 1.0, box_rounds: int | None = None,
                 box_tolerance: float = 0.02, mining: MiningOptions | None = None, max_pixels: int | None = MAX_PIXELS,
                 max_classes: int | None = MAX_CLASSES, **mining_fields) -> None:
        unknown = sorted(set(mining_fields) - set(_MINING_FIELDS))
        if unknown:
            raise TypeError(f"EnhanceOptions got unexpected keyword arguments {unknown}")
        if mining is not None:
            instance(mining, "mining", MiningOptions, "a samedenhancer.MiningOptions")
        mining = mining or MiningOptions()
        if mining_fields:
            mining = mining.replace(**mining_fields)
        if gate is True:
            gate = Gate()
        if not (gate is None or gate is False):
            instance(gate, "gate", Gate, "a samedenhancer.Gate, True, False or None")
        values = dict(
            policy=None if policy is None else choice(policy, "policy", POLICIES),
            threshold=validate_threshold(threshold),
            gate=gate,
            fusion=None if fusion is None else flag(fusion, "fusion"),
            fusion_weight=number(fusion_weight, "fusion_weight", above=0),
            box_rounds=None if box_rounds is None else integer(box_rounds, "box_rounds", 0),
            box_tolerance=number(box_tolerance, "box_tolerance", 0, 1),
            mining=mining,
            max_pixels=None if max_pixels is None else integer(max_pixels, "max_pixels", 1),
            max_classes=None if max_classes is None else integer(max_classes, "max_classes", 1),
        )
        if values["box_rounds"] and values["policy"] not in (None, "box"):
            raise ValueError(f"box_rounds applies to the 'box' policy only, got box_rounds={box_rounds} "
                             f"with policy {policy!r}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def replace(self, **changes) -> "EnhanceOptions":
        """A copy with ``changes`` applied (validated; mining fields may be given directly)."""
        mining_fields = {k: changes.pop(k) for k in list(changes) if k in _MINING_FIELDS}
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | changes
        if mining_fields:
            values["mining"] = values["mining"].replace(**mining_fields)
        return EnhanceOptions(**values)

    def for_model(self, default_policy: str) -> "EnhanceOptions":
        """These options with the model's default policy filled in, and the policy's default fusion
        (on for the box policy); a box-rounds setting the resulting policy cannot use is refused."""
        policy = self.policy or default_policy
        if self.box_rounds and policy != "box":
            raise ValueError(f"box_rounds applies to the 'box' policy only, got box_rounds={self.box_rounds} "
                             f"with the model's policy {policy!r}")
        return self.replace(policy=policy, fusion=policy == "box" if self.fusion is None else self.fusion)

    def gate_for(self, prompts: Prompts) -> Gate | None:
        """The gate for one image: ``gate``, or when it is None ``Gate()`` for the box policy on a
        map with more than one class (nested anatomy, see :class:`~samedenhancer.Enhancer`)."""
        if self.gate is None:
            return Gate() if self.policy == "box" and len(prompts.classes) > 1 else None
        return self.gate if isinstance(self.gate, Gate) else None  # False: off

    def check_size(self, shape: tuple, name: str) -> None:
        """Refuse an image or coarse mask of ``shape`` above ``max_pixels`` (before any work)."""
        at_most(int(np.prod(shape[:2], dtype=np.int64)), name, self.max_pixels, "pixels",
                "refining works at native resolution and its memory grows with the pixels; raise "
                "EnhanceOptions(max_pixels=...) (Enhancer(max_pixels=...)) if the machine has the memory, "
                "or give None to remove the guard")

    def check_classes(self, prompts: Prompts, name: str = "coarse") -> None:
        """Refuse a coarse map of more than ``max_classes`` classes (before the model runs)."""
        at_most(len(prompts.classes), name, self.max_classes, "classes",
                "every class costs decoder calls and memory; raise EnhanceOptions(max_classes=...) "
                "(Enhancer(max_classes=...)), or give None to remove the guard")

    def rounds_for(self, fused: bool) -> int:
        """Extra box rounds for one image: ``box_rounds``, or when it is None the default for the
        policy and for whether soft fusion ran."""
        if self.box_rounds is not None:
            return self.box_rounds
        return DEFAULT_BOX_ROUNDS if self.policy == "box" and fused else 0
