"""``demo``: the whole KNOW experiment from a preset, with progress, a summary table and ``DIR/results.json``."""

from __future__ import annotations

import argparse

from ..experiment import ALL_METHODS, PRESETS, preset
from ..pipeline import run_experiment
from . import TqdmHooks, command


@command("demo")
def _demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="pre-train → forget → predict ×2/×4/×8 → fine-tune on a target → evaluate")
    p.add_argument("--preset", default="quick", help=f"one of: {', '.join(PRESETS)} (default quick)")
    p.add_argument("--out", required=True, help="folder for results.json (finished seeds are resumed from it)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: the preset's)")
    p.add_argument("--methods", nargs="+", default=None, help=f"predictors among {', '.join(ALL_METHODS)}")
    p.add_argument("--scales", type=float, nargs="+", default=None, help="scaling factors, powers of 1/r (2 4 8)")
    p.add_argument("--official-known", default=None, help="folder with the official KNOWN_*.h5: adds known-official")
    p.add_argument("--device", default=None, help="auto, cpu or cuda[:N]")
    p.add_argument("--data-root", default=None, help="folder with torchvision datasets (the paper preset)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    import dataclasses

    cfg = preset(args.preset, seeds=args.seeds, methods=args.methods, scales=args.scales,
                 official_known=args.official_known)
    if args.device or args.data_root:
        cfg.source = dataclasses.replace(cfg.source, device=args.device or cfg.source.device,
                                         data_root=args.data_root or cfg.source.data_root)
    hooks = TqdmHooks(args.quiet)
    try:
        results = run_experiment(cfg, args.out, hooks)
    finally:
        hooks.close()
    print(format_summary(results))
    print(f"\nresults: {args.out}/results.json  ({results['timings']['total_s']:.0f} s)")
    return 0


def format_summary(results: dict) -> str:
    lines = [f"{'method':<22}{'scale':>6}{'target acc':>16}{'vs naive (95% CI)':>32}{'n':>4}"]
    for e in results["summary"]:
        d = e.get("vs_naive")
        diff = ""
        if d:
            ci = d["ci95"]
            diff = f"{d['mean']:+.4f}" + (f" [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "")
        lines.append(f"{e['method']:<22}{'×%g' % e['scale']:>6}{e['mean']:>9.4f} ±{e['std']:.3f}{diff:>32}{e['n']:>4}")
    invalid = {(r["method"], r.get("reason")) for r in results["rows"] if not r.get("valid", True)}
    lines += [f"INVALID {m}: {reason}" for m, reason in sorted(invalid)]
    lines += ["", *results["verdicts"]]
    return "\n".join(lines)
