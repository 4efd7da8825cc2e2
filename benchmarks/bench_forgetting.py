"""Forgetting runs timed on this machine, and the measurements behind the presets' protocol choice.

1. Speed (the release protocol, no warm oracles, as first measured): digits simple_cnn r=0.5 S=5 pre-trained until
   validation accuracy stops improving (goal ≤ 20 s on 2 cores); Fashion-MNIST 60k, 3 pre-training epochs (≤ 90 s).
2. Protocols (docs/forgetting.md): the quick and standard presets' source runs under ``release`` and ``equal-steps``
   over several seeds — does the film forget (p-value of the loss test, strength, smoothness), how far does each
   stage move, and what do the warm oracles gain on the source task. Settings are chosen on these figures only,
   never on downstream accuracy. Skipped (and said so) without Fashion-MNIST.

``python benchmarks/bench_forgetting.py [--seeds 0 1 2] [--skip-speed]``
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import _common
import torch

from know_core.data import load_dataset
from know_core.data.fashion_mnist import fashion_mnist_available
from know_core.engine.config import ForgetConfig, OptimConfig, PretrainConfig
from know_core.engine.forgetting import run_forgetting
from know_core.engine.protocols import apply_protocol
from know_core.experiment.spec import preset


def timed_run(cfg: ForgetConfig) -> dict:
    load_dataset(cfg.dataset)  # data loading is not part of the run
    t0 = time.perf_counter()
    traj, timings = run_forgetting(cfg)
    total = time.perf_counter() - t0
    print(f"{cfg.dataset:<14} total {total:6.1f} s  (pre-training {timings['pretrain_s']:.1f} s over "
          f"{len(traj.pretrain_history)} epochs, forgetting {timings['forgetting_s']:.1f} s)  "
          f"source loss {' → '.join(f'{a:.3f}' for a in traj.source_loss)}  forgot={traj.forgot}")
    return {"total_s": total, "pretrain_s": timings["pretrain_s"], "forgetting_s": timings["forgetting_s"],
            "pretrain_epochs": len(traj.pretrain_history), "source_acc": [round(a, 4) for a in traj.source_acc],
            "forgot": traj.forgot}


def speed(figures: dict) -> None:
    digits = timed_run(apply_protocol(ForgetConfig(dataset="digits", model="simple_cnn", r=0.5, stages=5, warm="off"),
                                      "release"))
    figures.update({f"digits_{k}": v for k, v in digits.items()})
    figures["digits_goal_met"] = digits["total_s"] <= 20
    fm = timed_run(apply_protocol(ForgetConfig(dataset="fashion-mnist", model="simple_cnn", r=0.5, stages=5,
                                               warm="off", optim=OptimConfig(batch_size=128),
                                               pretrain=PretrainConfig(max_epochs=3, early_stop=False)), "release"))
    figures.update({f"fmnist_{k}": v for k, v in fm.items()})
    figures["fmnist_goal_met"] = fm["total_s"] <= 90


def protocol_figures(name: str, source: ForgetConfig, protocol: str, seeds: list[int]) -> dict:
    runs = []
    for seed in seeds:
        cfg = apply_protocol(dataclasses.replace(source, seed=seed, warm="auto", device="cpu"), protocol)
        t0 = time.perf_counter()
        traj, _ = run_forgetting(cfg)
        rep = traj.report
        warm_gain = [a - rep.source_acc[0] for a in traj.warm.source_acc] if traj.warm else []
        runs.append({"seconds": time.perf_counter() - t0, "forgot": rep.forgot, "forgot_acc": rep.forgot_acc,
                     "p": rep.p_value, "loss_rise": rep.source_loss[-1] - rep.source_loss[0],
                     "acc_change": rep.source_acc[-1] - rep.source_acc[0], "strength": rep.strength,
                     "smoothness": rep.smoothness, "pattern": rep.pattern, "kind": rep.kind,
                     "step_rel": [s for s in rep.step_rel if s is not None],
                     "step_cos": [c for c in rep.step_cos if c is not None], "warm_gain": warm_gain,
                     "budget": cfg.stage_budget})
        print(f"{name:<9}{protocol:<12} seed {seed}: {rep.pattern:<18} p={rep.p_value:.2g} loss "
              f"{rep.source_loss[0]:.3f} → {rep.source_loss[-1]:.3f}  acc {rep.source_acc[0]:.3f} → "
              f"{rep.source_acc[-1]:.3f}  steps(%‖Θ0‖) {', '.join(f'{100 * s:.1f}' for s in runs[-1]['step_rel'])}  "
              f"warm acc gain {', '.join(f'{g:+.4f}' for g in warm_gain)}  ({runs[-1]['seconds']:.0f} s)")
    mean = lambda key: statistics.mean(r[key] for r in runs)  # noqa: E731
    sd = lambda key: statistics.stdev(r[key] for r in runs) if len(runs) > 1 else 0.0  # noqa: E731
    k_max = min(len(r["warm_gain"]) for r in runs)
    return {"budget": runs[0]["budget"], "forgot": sum(r["forgot"] for r in runs), "seeds": len(runs),
            "forgot_acc": sum(r["forgot_acc"] for r in runs), "max_p": max(r["p"] for r in runs),
            "loss_rise": mean("loss_rise"), "loss_rise_sd": sd("loss_rise"), "acc_change": mean("acc_change"),
            "smoothness": mean("smoothness"), "patterns": sorted({r["pattern"] for r in runs}),
            "kinds": sorted({r["kind"] for r in runs if r["kind"]}),
            "step_rel_first": statistics.mean(r["step_rel"][0] for r in runs),
            "step_rel_last": statistics.mean(r["step_rel"][-1] for r in runs),
            "step_cos": statistics.mean(statistics.mean(r["step_cos"]) for r in runs if r["step_cos"]),
            "warm_gain": [statistics.mean(r["warm_gain"][k] for r in runs) for k in range(k_max)],
            "seconds": mean("seconds")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--speed-only", action="store_true",
                        help="re-time part 1 alone, keeping the protocol figures already in the results file")
    args = parser.parse_args()
    figures: dict = {"threads": torch.get_num_threads()}
    if args.speed_only:
        kept = _common.previous()
        figures.update({k: v for k, v in kept.items() if k.startswith(("quick_", "standard_"))})
    if not fashion_mnist_available():
        print("fashion-mnist: skipped (apt-get install -y dataset-fashion-mnist)")
        _common.emit(figures)
        return
    if not args.skip_speed:
        speed(figures)
    for name in () if args.speed_only else ("quick", "standard"):
        source = preset(name).source
        for protocol in ("release", "equal-steps"):
            for key, value in protocol_figures(name, source, protocol, args.seeds).items():
                figures[f"{name}_{protocol}_{key}"] = value
    _common.emit(figures)


if __name__ == "__main__":
    main()
