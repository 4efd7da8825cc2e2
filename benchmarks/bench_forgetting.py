"""End-to-end forgetting runs, pre-training included, timed on this machine.

- digits: simple_cnn, r=0.5, S=5, 1 epoch per stage, pre-training until validation accuracy stops improving
  (goal <= 20 s on 2 CPU cores);
- Fashion-MNIST: 60k images, simple_cnn, r=0.5, S=5, 3 pre-training epochs (goal <= 90 s). Skipped (and said so)
  when the Debian package is missing.
"""

from __future__ import annotations

import _common

import time

import torch

from know_core.config import ForgetConfig, OptimConfig, PretrainConfig
from know_core.data import fashion_mnist_available, load_dataset
from know_core.forgetting import run_forgetting


def timed_run(cfg: ForgetConfig) -> dict:
    load_dataset(cfg.dataset)  # data loading is not part of the run
    t0 = time.perf_counter()
    traj, timings = run_forgetting(cfg)
    total = time.perf_counter() - t0
    print(f"{cfg.dataset:<14} total {total:6.1f} s  (pre-training {timings['pretrain_s']:.1f} s over "
          f"{len(traj.pretrain_history)} epochs, forgetting {timings['forgetting_s']:.1f} s)  "
          f"source acc {' → '.join(f'{a:.3f}' for a in traj.source_acc)}  forgot={traj.forgot}")
    return {"total_s": total, "pretrain_s": timings["pretrain_s"], "forgetting_s": timings["forgetting_s"],
            "pretrain_epochs": len(traj.pretrain_history), "source_acc": [round(a, 4) for a in traj.source_acc],
            "forgot": traj.forgot}


def main() -> None:
    figures: dict = {"threads": torch.get_num_threads()}
    digits = timed_run(ForgetConfig(dataset="digits", model="simple_cnn", r=0.5, stages=5))
    figures.update({f"digits_{k}": v for k, v in digits.items()})
    figures["digits_goal_met"] = digits["total_s"] <= 20
    if fashion_mnist_available():
        fm = timed_run(ForgetConfig(dataset="fashion-mnist", model="simple_cnn", r=0.5, stages=5,
                                    optim=OptimConfig(batch_size=128),
                                    pretrain=PretrainConfig(max_epochs=3, early_stop=False)))
        figures.update({f"fmnist_{k}": v for k, v in fm.items()})
        figures["fmnist_goal_met"] = fm["total_s"] <= 90
    else:
        print("fashion-mnist: skipped (apt-get install -y dataset-fashion-mnist)")
    _common.emit(figures)


if __name__ == "__main__":
    main()
