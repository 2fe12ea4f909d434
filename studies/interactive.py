"""``python -m studies interactive``: interactive correction measured with the protocol
of MedicoSAM and SAMMed.

Each image is encoded once (embeddings kept in the embedding store ``--cache`` for the next run); every start (jittered
GT box, one point at the GT's distance-transform maximum, a coarse mask refined by the default
Enhancer) and every simulated user (farthest point inside the largest error region; MedicoSAM's
one random FN and one random FP point per round) runs an :class:`InteractiveSession` on that
embedding, so a click never encodes. Writes ``benchmarks/INTERACTIVE.md`` and a plot.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from samedenhancer import EmbeddingStore
from samedenhancer.bench import datasets
from samedenhancer.io import write_atomically
from samedenhancer.predictor import Predictor
from .interactive_protocol import (CLICKS, EXPANSIONS, SHIFTS, STARTS, TARGETS, Case, build_cases, cases_512, latency,
                                    mean_curve, run_cases)
from samedenhancer.bench.report import machine, write_report


# -- report -------------------------------------------------------------------------------------
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194)]


def plot(curves: dict, names: list[str], path: Path) -> None:
    """Dice vs clicks, one panel per start (its own Dice range), one line per dataset
    (farthest-point user), drawn with OpenCV (PNG)."""
    pw, ph, left, top, bottom = 420, 400, 60, 60, 50
    font = cv2.FONT_HERSHEY_SIMPLEX
    canvas = np.full((ph + 20, len(STARTS) * pw + 170, 3), 255, np.uint8)
    cv2.putText(canvas, "Dice vs clicks (LiteMedSAM, farthest-point user)", (left, 22), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for p, start in enumerate(STARTS):
        values = [v for (name, s), c in curves.items() if s == start for v in c if np.isfinite(v)]
        if not values:
            continue
        step = 0.02 if 1 - min(values) <= 0.12 else (0.05 if 1 - min(values) <= 0.4 else 0.1)
        low = np.floor(min(values) / step) * step

        def to_px(k, d):
            x = p * pw + left + (pw - left - 20) * k / CLICKS
            y = top + (ph - top - bottom) * (1 - (d - low) / (1 - low))
            return int(round(x)), int(round(y))

        x0, y0 = to_px(0, 1.0)
        x1, y1 = to_px(CLICKS, low)
        cv2.putText(canvas, f"start: {start}", (x0, y0 - 12), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        for d in np.arange(low, 1.0 + step / 2, step):
            _, y = to_px(0, d)
            cv2.line(canvas, (x0, y), (x1, y), (225, 225, 225), 1)
            cv2.putText(canvas, f"{d:.2f}", (x0 - 42, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), (0, 0, 0), 1)
        for k in range(CLICKS + 1):
            x, _ = to_px(k, low)
            cv2.putText(canvas, str(k), (x - 4, y1 + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, "clicks", ((x0 + x1) // 2 - 20, y1 + 36), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for i, name in enumerate(names):
            curve = curves.get((name, start))
            if curve is None:
                continue
            colour = COLOURS[i % len(COLOURS)][::-1]
            pts = np.array([to_px(k, d) for k, d in enumerate(curve)], np.int32)
            cv2.polylines(canvas, [pts], False, colour, 2, cv2.LINE_AA)
            for pt in pts:
                cv2.circle(canvas, (int(pt[0]), int(pt[1])), 3, colour, -1, cv2.LINE_AA)
    for i, name in enumerate(names):
        y = top + 20 * i + 10
        x = len(STARTS) * pw + 10
        cv2.line(canvas, (x, y), (x + 20, y), COLOURS[i % len(COLOURS)][::-1], 2)
        cv2.putText(canvas, name, (x + 26, y + 4), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    ok, data = cv2.imencode(".png", canvas)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode the plot for {path}")
    write_atomically(path, ".png", lambda tmp: Path(tmp).write_bytes(data.tobytes()))


def _fmt(values) -> str:
    return " | ".join("—" if not np.isfinite(v) else f"{100 * v:.1f}" for v in values)


def report(model: str, limit: int, names: list[str], ours: dict, competitor: dict, lat_ours, lat_comp, lat_extra,
           seconds_total: float, command: str) -> tuple[list[str], dict]:
    info = machine()
    head = " | ".join(str(k) for k in range(CLICKS + 1))
    lines = [
        "# Interactive correction",
        "",
        f"Command: `{command}`; model {model}; {limit} images per dataset with a non-empty expert mask (first in manifest"
        f" order); {info['cpu']}, {info['cores']} cores; {info['date']}; whole run {seconds_total / 60:.1f} min.",
        "Each image is encoded once; every start, user and box variant runs an `InteractiveSession` on that embedding.",
        "Starts: `box` = expert box, each side grown by U{0..10} px (seeded per image, MedSAM); `point` = one positive"
        " point at the expert mask's distance-transform maximum; `mask` = the coarse mask (Kvasir/CVC: PraNet > 127;"
        " BUSI/DDTI/ACDC: the corruption protocol of `bench/corruption.py`) refined by `Enhancer()`.",
        "Users: `farthest` = one click per round at the pixel farthest inside the largest connected error region (FN"
        " region -> positive, FP -> negative); `random` = MedicoSAM's round of one random FN and one random FP pixel"
        " (Dice after every second click). Dice in %, mean over images.",
        "",
        "## Dice vs clicks (ours: the model's default correction)",
        "",
        f"| dataset | start | user | images | {head} | never down | ms/click (median) |",
        "|---|---|---|---|" + "---|" * (CLICKS + 1) + "---|---|",
    ]
    summary: dict = {"targets": {}}
    curves = {}
    for name in names:
        for start in STARTS:
            for user in ("farthest", "random"):
                runs = ours.get((name, start, user))
                if not runs:
                    continue
                curve = mean_curve(runs)
                if user == "farthest":
                    curves[(name, start)] = curve
                finite = curve[np.isfinite(curve)]
                never_down = bool(np.all(np.diff(finite) >= -1e-9))
                ms = 1000 * float(np.median(np.concatenate([r.seconds for r in runs]))) if any(r.seconds for r in runs) else float("nan")
                lines.append(f"| {name} | {start} | {user} | {len(runs)} | {_fmt(curve)} | {'yes' if never_down else 'no'} | {ms:.1f} |")
    lines += [
        "",
        "## Against MedicoSAM's protocol on the same model (box start, farthest-point user)",
        "",
        "Competitor: every click as a point prompt with the box, the previous low-res logits as mask prompt when the"
        " decoder takes one (`InteractiveSession(..., correction=\"prompt\")`); one decoder call per click.",
        "",
        f"| dataset | correction | {head} | gain after 5 clicks |",
        "|---|---|" + "---|" * (CLICKS + 1) + "---|",
    ]
    for name in names:
        for label, table in (("ours (default)", ours), ("MedicoSAM protocol", competitor)):
            runs = table.get((name, "box", "farthest"))
            if runs:
                c = mean_curve(runs)
                lines.append(f"| {name} | {label} | {_fmt(c)} | {100 * (c[5] - c[0]):+.1f} |")
    lines += [
        "",
        "## Targets (LiteMedSAM, box start, farthest-point user)",
        "",
        "| dataset | box | 5 clicks | gain | gain >= 3.0 | curve never down | mask start, 3 clicks | >= box + 5 clicks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        box = curves.get((name, "box"))
        mask = curves.get((name, "mask"))
        if box is None:
            continue
        gain = 100 * (box[5] - box[0])
        never_down = bool(np.all(np.diff(box) >= -1e-9))
        gain_target = name in ("BUSI", "DDTI", "Kvasir", "CVC-ClinicDB")
        m3 = mask[3] if mask is not None else float("nan")
        summary["targets"][name] = dict(box=box[0], five=box[5], gain=gain, never_down=never_down, mask3=m3)
        lines.append(
            f"| {name} | {100 * box[0]:.1f} | {100 * box[5]:.1f} | {gain:+.1f} | {('met' if gain >= 3.0 else 'missed') if gain_target else '(no target)'} |"
            f" {'met' if never_down else 'missed'} | {100 * m3:.1f} | {'met' if m3 >= box[5] else 'missed'} |"
        )
    lines += shortfall(names, ours)
    lat = lambda s: (1000 * float(np.median(s)), 1000 * float(np.percentile(s, 95)), len(s)) if len(s) else (float("nan"),) * 2 + (0,)
    lines += [
        "",
        "## Latency per click, 512 x 512 images (box start, farthest-point user, 8 clicks, encode not timed)",
        "",
        "| model, correction | median ms | p95 ms | clicks | target <= 100 ms |",
        "|---|---|---|---|---|",
    ]
    for label, secs in [(f"{model}, ours (default)", lat_ours), (f"{model}, MedicoSAM protocol (one decoder call)", lat_comp)] + list(lat_extra):
        med, p95, n = lat(secs)
        lines.append(f"| {label} | {med:.1f} | {p95:.1f} | {n} | {'met' if med <= 100 else 'missed'} (median) |")
        summary.setdefault("latency", {})[label] = dict(median_ms=med, p95_ms=p95)
    lines += [
        "",
        "## Box-jitter robustness (SAMMed): Dice of the box start and after 3 clicks",
        "",
        "Expansion k: each side of the tight expert box grown by k px; shift s: the tight box moved by s px in x and in y.",
        "",
        "| dataset | " + " | ".join(f"expand {k}" for k in EXPANSIONS) + " | " + " | ".join(f"shift {s:+d}" for s in SHIFTS) + " |",
        "|---|" + "---|" * (len(EXPANSIONS) + len(SHIFTS)),
    ]
    for name in names:
        cells = []
        for kind, values in (("expand", EXPANSIONS), ("shift", SHIFTS)):
            for k in values:
                pairs = ours.get((name, kind, k))
                if not pairs:
                    cells.append("—")
                    continue
                a = np.array(pairs)
                cells.append(f"{100 * a[:, 0].mean():.1f} -> {100 * a[:, 1].mean():.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [""]
    return lines, dict(summary, curves={f"{k[0]}/{k[1]}": v.tolist() for k, v in curves.items()})


def shortfall(names: list[str], ours: dict, worst: int = 3) -> list[str]:
    """Why the mask start misses the box start's five clicks: how far below the box it begins, and
    the images that make up most of the gap between its three clicks and the box's five (each
    image's share of the mean gap, and the mean gap without the worst image)."""
    lines = [
        "",
        "### Where the mask start falls short (farthest-point user)",
        "",
        "Gap = mean Dice of the box start after 5 clicks minus the mask start after 3, on the same images;"
        " per image, (box after 5 - mask after 3) / images is its share of that gap.",
        "",
        "| dataset | start gap (box 0 - mask 0) | gap (box 5 - mask 3) | largest shares: image (mask 0 -> mask 3 vs box 5), share |"
        " gap without the worst image |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        box, mask = ours.get((name, "box", "farthest")), ours.get((name, "mask", "farthest"))
        if not box or not mask:
            continue
        by_stem = {r.stem: r for r in box}
        pairs = [(m, by_stem[m.stem]) for m in mask if m.stem in by_stem]
        if len(pairs) < 2:
            continue
        shares = sorted((((b.dice[5] - m.dice[3]) / len(pairs), m, b) for m, b in pairs), key=lambda t: -t[0])
        gap = sum(s for s, _, _ in shares)
        start_gap = float(np.mean([b.dice[0] - m.dice[0] for m, b in pairs]))
        rest = (gap * len(pairs) - shares[0][0] * len(pairs)) / (len(pairs) - 1)
        cells = "; ".join(f"{m.stem} ({100 * m.dice[0]:.1f} -> {100 * m.dice[3]:.1f} vs {100 * b.dice[5]:.1f}), {100 * s:+.1f}"
                          for s, m, b in shares[:worst])
        lines.append(f"| {name} | {100 * start_gap:+.1f} | {100 * gap:+.1f} | {cells} | {100 * rest:+.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies interactive")
    parser.add_argument("--model", default="litemedsam")
    parser.add_argument("--limit", type=int, default=30, help="images per dataset (first with a non-empty mask)")
    parser.add_argument("--datasets", nargs="+", default=None, help="subset of dataset names (" + ", ".join(t[2] for t in TARGETS) + ")")
    parser.add_argument("--cache", default=None,
                        help="embedding store folder (samedenhancer.EmbeddingStore; default: none, encode every run)")
    parser.add_argument("--extra-latency", nargs="*", default=(), help="more model names/folders whose per-click latency (their default correction) is reported")
    parser.add_argument("--out", default=None, help="write the report (Markdown) here, and its plot beside it")
    parser.add_argument("--json", action="store_true", help="also print the summary as JSON")
    args = parser.parse_args(argv)
    if datasets.data_root() is None:
        print("the interactive benchmark needs ../shared/data (or $SAMEDENHANCER_DATA)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    predictor = Predictor(args.model, embeddings=EmbeddingStore(args.cache) if args.cache else None)
    cases = build_cases(predictor, args.limit, args.datasets)
    names = [t[2] for t in TARGETS if any(c.name == t[2] for c in cases)]
    print(f"{len(cases)} cases loaded in {time.perf_counter() - t0:.0f} s", flush=True)
    ours = run_cases(predictor, cases, None, full=True)
    print(f"ours done at {time.perf_counter() - t0:.0f} s", flush=True)
    competitor = run_cases(predictor, cases, "prompt", full=False)
    small = cases_512(predictor, cases)
    lat_ours, lat_comp = latency(predictor, small, None), latency(predictor, small, "prompt")
    extra = []
    for other in args.extra_latency:
        p = Predictor(other)
        extra.append((f"{p.manifest.name}, default ({'prompt' if 'point' in p.manifest.trained_prompts else 'local'})",
                      latency(p, [Case(c.dataset, c.name, c.stem, c.image, p.encode(c.image), c.truth, c.coarse) for c in small[:2]], None)))
    command = "python -m studies interactive " + " ".join(argv if argv is not None else sys.argv[1:])
    lines, summary = report(args.model, args.limit, names, ours, competitor, lat_ours, lat_comp, extra,
                            time.perf_counter() - t0, command.strip())
    if args.out:
        png = Path(args.out).with_name(Path(args.out).stem + ".png")
        plot({k: np.array(v) for k, v in ((tuple(k.split("/")), v) for k, v in summary["curves"].items())}, names, png)
        lines.insert(2, f"![Dice vs clicks]({png.name})")
        lines.insert(3, "")
    write_report(args.out, "\n".join(lines))
    print("\n".join(lines))
    if args.json:
        import json

        print(json.dumps(summary, default=float))
    return 0
