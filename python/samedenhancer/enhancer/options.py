"""The Enhancer's options and the one place their defaults are decided: which prompt policy, and
per image whether soft fusion, box iteration and the no-harm gate run."""

from __future__ import annotations

from dataclasses import dataclass

from ..core import MiningOptions, Prompts, validate_threshold
from ..validation import choice, flag, integer, number

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
            object.__setattr__(self, name, number(getattr(self, name), f"Gate {name}", 0, 1))


@dataclass(frozen=True)
class Options:
    """Validated Enhancer options with the model's default policy filled in.

    ``gate``, ``fusion`` and ``box_rounds`` keep ``None`` ("the default for this image"); the
    methods below decide it per image, so the rules live here and nowhere else.
    """

    policy: str
    gate: Gate | bool | None
    threshold: float | None
    fusion: bool
    fusion_weight: float
    box_rounds: int | None
    box_tolerance: float
    mining: MiningOptions

    @classmethod
    def make(cls, default_policy: str, *, policy=None, gate=None, threshold=None, fusion=None, fusion_weight=1.0,
             box_rounds=None, box_tolerance=0.02, mining: MiningOptions | None = None) -> "Options":
        """Check every option (a bad one is reported now, not at the first image)."""
        policy = choice(default_policy if policy is None else policy, "policy", POLICIES)
        if gate is True:
            gate = Gate()
        if not (gate is None or gate is False or isinstance(gate, Gate)):
            raise TypeError(f"gate must be a samedenhancer.Gate, True, False or None, got {type(gate).__name__}")
        fusion = policy == "box" if fusion is None else flag(fusion, "fusion")
        if box_rounds is not None:
            box_rounds = integer(box_rounds, "box_rounds", 0)
            if box_rounds and policy != "box":
                raise ValueError(
                    f"box_rounds applies to the 'box' policy only, got box_rounds={box_rounds} with policy {policy!r}"
                )
        return cls(
            policy=policy,
            gate=gate,
            threshold=validate_threshold(threshold),
            fusion=fusion,
            fusion_weight=number(fusion_weight, "fusion_weight", above=0),
            box_rounds=box_rounds,
            box_tolerance=number(box_tolerance, "box_tolerance", 0, 1),
            mining=MiningOptions() if mining is None else mining,
        )

    def gate_for(self, prompts: Prompts) -> Gate | None:
        """The gate for one image: ``gate``, or when it is None ``Gate()`` for the box policy on a
        map with more than one class (nested anatomy, see :class:`~samedenhancer.Enhancer`)."""
        if self.gate is None:
            return Gate() if self.policy == "box" and len(prompts.classes) > 1 else None
        return self.gate if isinstance(self.gate, Gate) else None  # False: off

    def rounds_for(self, fused: bool) -> int:
        """Extra box rounds for one image: ``box_rounds``, or when it is None the default for the
        policy and for whether soft fusion ran."""
        if self.box_rounds is not None:
            return self.box_rounds
        return DEFAULT_BOX_ROUNDS if self.policy == "box" and fused else 0
