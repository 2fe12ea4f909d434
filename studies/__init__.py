"""``python -m studies NAME`` (from the repository root): the quality studies behind the reports in
``benchmarks/``: how much the refinement changes Dice and HD95 on the real data, the paper's tables
with U-Nets trained here, interactive correction with simulated users, volumes, SAMAug.

They use samedenhancer's public API and its benchmark helpers; the package never imports them.
They need the real data of ``../shared/data`` (or ``$SAMEDENHANCER_DATA``) and the ``bench`` extra.
"""

from __future__ import annotations

#: Every study with what it measures, in the order ``--help`` lists them.
STUDIES = {
    "quality": "Dice and HD95 of the refinement variants on every real dataset (PraNet maps, corrupted expert masks).",
    "int8": "The Dice change the int8 encoder makes against the fp32 one.",
    "unet": "A small 2-D U-Net trained here, k-fold, giving every image an out-of-fold coarse map (the weak segmenter).",
    "paper": "The paper's Table 2 (U-Net maps refined) and Table 3 (self-training on refined pseudo-labels).",
    "interactive": "Click correction with simulated users (MedicoSAM's and SAMMed's protocol): Dice after each click.",
    "volumes": "Propagation from annotated slices and 3-D refinement on the 60 ACDC volumes.",
    "samaug": "SAMAug's prior maps: how well they locate the target, what they cost, and whether they help a U-Net.",
}


def main(argv: list[str] | None = None) -> int:
    from samedenhancer.bench import run

    return run(argv, prog="python -m studies", table=STUDIES, package="studies",
               description=__doc__.split("\n\n")[0].split(": ", 1)[1])
