"""The cost ledger of one ``standard`` seed without its fine-tunings: KNOW's overhead against each oracle, per scale.

The reference run (docs/standard-results.json) predates the ledger: it has wall seconds only and the three oracles'
time as one figure. This runs the seed's engine (:func:`know_core.experiment.seed.run_seed`) with the target fine-tuning
replaced by a no-op, so the forgetting film, every prediction and each oracle ×2, ×4, ×8 are timed on their own, wall
and CPU. ``--seed`` picks the seed (default 0).
"""

from __future__ import annotations

import argparse

import _common

from know_core.common.hooks import Hooks
from know_core.data.fashion_mnist import fashion_mnist_available
from know_core.experiment.cost import seed_overhead
from know_core.experiment.seed import SeedContext, run_seed
from know_core.experiment.spec import preset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not fashion_mnist_available():
        print("standard: skipped (apt-get install -y dataset-fashion-mnist)")
        return
    cfg = preset("standard", seeds=[args.seed])
    SeedContext.evaluate_init = lambda self, state, label: {"source_acc": None, "target_acc": None}  # no fine-tuning
    result, _ = run_seed(cfg, args.seed, Hooks())
    phases = result["ledger"]
    print(f"standard, seed {args.seed}: seconds per phase (wall / CPU)")
    for name, e in phases.items():
        print(f"  {name:<22}{e['wall_s']:9.1f}{e['cpu_s']:9.1f}")
    figures = {f"{name}_{kind}": e[kind] for name, e in phases.items() for kind in ("wall_s", "cpu_s")}
    oracles = [f"oracle:{s:g}" for s in cfg.scales]
    total = sum(phases[o]["wall_s"] for o in oracles)
    for name in oracles:
        share = phases[name]["wall_s"] / total
        figures[f"{name}_share"] = share
        print(f"  {name} is {share:.0%} of the three oracles' wall time")
    for method in cfg.method_names:
        over = seed_overhead(phases, method)
        ratios = "  ".join(f"×{s:g} {over['wall_s'] / phases[f'oracle:{s:g}']['wall_s']:.3f}" for s in cfg.scales)
        print(f"  overhead {method:<15}{over['wall_s']:7.1f} s wall, {over['cpu_s']:7.1f} s CPU; ÷ oracle: {ratios}")
        figures[f"overhead:{method}_wall_s"] = over["wall_s"]
    _common.emit(figures)


if __name__ == "__main__":
    main()
