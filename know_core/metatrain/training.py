"""Train one KNOWN per group (conv, fc, bias) on a meta-dataset; write the checkpoint and its JSON card.

Recipe: the official architecture (9,425 parameters), weighted L1 loss on the predicted next value (the weights make
"keep θ_k" score 1.0 on every trajectory, see ``metadataset``), Adam, gradient clipping, early stopping on the
validation trajectories, best weights kept. Both input conventions are trained and the better one on validation is
kept per group: "raw" (official) and "range" (scale-invariant; its ``out_scale`` is set from the training targets
because tanh caps Δ at one unit of range). The head starts at zero, so every network starts as "keep θ_k" and can only
be kept if it beats that on validation. The exponent of the gated activation is clamped inside ``KNOWN`` (EXP_CLAMP);
a non-finite batch loss is skipped, never stepped on.

The (group, mode) networks are independent, so they train in parallel single-thread processes, each with an equal
slice of the wall-clock budget.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import save_file

from know_core.common.errors import KnowError
from know_core.common.fsio import atomic_write, sha256_file, write_json

from ..predictors import get_predictor
from ..predictors.known import KNOWN, save_known_checkpoint
from .collection import SUMMARY_FILE, single_thread_pool
from .metadataset import GroupPairs, load_metadataset


@dataclass
class Recipe:
    seed: int = 0
    max_epochs: int = 60
    patience: int = 8
    minutes: float = 8.0
    modes: tuple[str, ...] = ("raw", "range")
    lr: float = 1e-3
    batch_size: int = 1024
    epoch_rows: int = 262_144  # rows drawn per epoch (with replacement across epochs), so validation comes often
    max_rows: int = 3000
    val_fraction: float = 0.2
    workers: int = 2
    sample_rows: int = 2000
    clip: float = 1.0
    target: str = "backward"  # what a window predicts: backward (the method), warm or dc (metadataset.TARGETS)


@torch.no_grad()
def figures(pred: torch.Tensor, pairs: GroupPairs) -> dict[str, float]:
    """rel_l1: Σw|ŷ−y| / Σw|θ_k−y| (the loss over "keep θ_k"); median_rel_l2: median over (trajectory, position)
    blocks of ‖ŷ−y‖/‖θ_k−y‖, the backtest's figure."""
    err, base = (pred.double() - pairs.y.double()), (pairs.x[:, -1].double() - pairs.y.double())
    w = pairs.w.double()
    rel_l1 = float((w * err.abs()).sum() / (w * base.abs()).sum())
    _, inv = torch.unique(pairs.block, return_inverse=True)
    num = torch.zeros(int(inv.max()) + 1, dtype=torch.float64).index_add_(0, inv, err ** 2)
    den = torch.zeros_like(num).index_add_(0, inv, base ** 2)
    return {"rel_l1": rel_l1, "median_rel_l2": float(torch.median((num / den.clamp_min(1e-300)).sqrt()))}


@torch.no_grad()
def predict_rows(net: KNOWN, x: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    net.eval()
    return torch.cat([net(x[i:i + chunk]) for i in range(0, len(x), chunk)])


def baseline_figures(pairs: GroupPairs, group: str) -> dict[str, dict[str, float]]:
    tv = pairs.x[:, -1] + (pairs.x[:, -1] - pairs.x[:, -2])
    ef = get_predictor("expfit").predict(pairs.x, 1, group)[:, 0]
    return {"taskvector": figures(tv, pairs), "expfit": figures(ef, pairs)}


def range_out_scale(pairs: GroupPairs, seed: int) -> float:
    """99th percentile of |y − θ_k| in units of the window's range, within [1, 8]: Δ = ±1 must reach it."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(pairs), generator=gen)[:200_000]
    x, y = pairs.x[idx], pairs.y[idx]
    s = (x.amax(1) - x.amin(1)).clamp_min(1e-12)
    ratio = ((y - x[:, -1]).abs() / s)
    return float(min(8.0, max(1.0, torch.quantile(ratio[torch.isfinite(ratio)], 0.99))))


def train_one(group: str, mode: str, train: GroupPairs, val: GroupPairs, recipe: Recipe,
              seconds: float) -> dict[str, Any]:
    """Fit one network; returns its best state, out_scale, learning curve and validation figures."""
    t0 = time.perf_counter()
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    net = KNOWN(mode)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        if mode == "range":
            net.out_scale.fill_(range_out_scale(train, recipe.seed))
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    best = (figures(predict_rows(net, val.x), val)["rel_l1"], copy.deepcopy(net.state_dict()), 0)
    curve, stale = [{"epoch": 0, "train_loss": None, "val_rel_l1": best[0]}], 0
    for epoch in range(1, recipe.max_epochs + 1):
        net.train()
        order = torch.randint(len(train), (min(recipe.epoch_rows, len(train)),), generator=gen)
        total, count = 0.0, 0
        for start in range(0, len(order), recipe.batch_size):
            idx = order[start:start + recipe.batch_size]
            loss = (train.w[idx] * (net(train.x[idx]) - train.y[idx]).abs()).mean()
            if not torch.isfinite(loss):
                continue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), recipe.clip)
            opt.step()
            total, count = total + float(loss.detach()) * len(idx), count + len(idx)
        val_loss = figures(predict_rows(net, val.x), val)["rel_l1"]
        curve.append({"epoch": epoch, "train_loss": total / max(count, 1), "val_rel_l1": val_loss})
        if val_loss < best[0]:
            best, stale = (val_loss, copy.deepcopy(net.state_dict()), epoch), 0
        else:
            stale += 1
        if stale >= recipe.patience or time.perf_counter() - t0 > seconds:
            break
    net.load_state_dict(best[1])
    return {"group": group, "mode": mode, "state": best[1], "best_epoch": best[2], "curve": curve,
            "val": figures(predict_rows(net, val.x), val), "seconds": time.perf_counter() - t0,
            "stopped": "patience" if stale >= recipe.patience else ("budget" if epoch < recipe.max_epochs
                                                                     else "max_epochs")}


def metatrain(data: str | Path, out: str | Path, recipe: Recipe, command: str = "",
              log: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Load ``data``, train every (group, mode), keep the best mode per group, write checkpoint + card + sample."""
    if recipe.minutes <= 0 or recipe.max_epochs < 1 or recipe.workers < 1:
        raise KnowError("--minutes must be > 0, --max-epochs >= 1 and --workers >= 1")
    bad = [m for m in recipe.modes if m not in ("raw", "range")]
    if bad or not recipe.modes:
        raise KnowError(f"--modes must list raw and/or range, got {','.join(recipe.modes) or 'nothing'}")
    t0 = time.perf_counter()
    meta = load_metadataset(data, recipe.val_fraction, recipe.seed, recipe.max_rows, recipe.target)
    groups = [g for g in meta.train if g in meta.val]
    if not groups:
        raise KnowError(f"{data}: no group has both training and validation windows; collect more trajectories")
    windows = json.dumps(meta.describe()["windows"])
    log(f"meta-dataset: {windows} windows; loading took {time.perf_counter() - t0:.0f} s")
    tasks = [(g, m) for g in groups for m in recipe.modes]
    rounds = math.ceil(len(tasks) / recipe.workers)
    seconds = max(5.0, recipe.minutes * 60 / rounds - 5.0)
    results = []
    with single_thread_pool(recipe.workers) as pool:
        futures = [pool.submit(train_one, g, m, meta.train[g], meta.val[g], recipe, seconds) for g, m in tasks]
        for fut in futures:
            results.append(fut.result())
            r = results[-1]
            log(
                f"{r['group']:<5} {r['mode']:<6} val rel. L1 {r['val']['rel_l1']:.4f}, median rel. L2 "
                f"{r['val']['median_rel_l2']:.4f} (best epoch {r['best_epoch']}, {r['seconds']:.0f} s, {r['stopped']})"
            )
    chosen, validation, curves = {}, {}, {}
    for g in groups:
        mine = {r["mode"]: r for r in results if r["group"] == g}
        mode = min(mine, key=lambda m: mine[m]["val"]["median_rel_l2"])
        net = KNOWN(mode)
        net.load_state_dict(mine[mode]["state"])
        chosen[g] = net.eval()
        validation[g] = {
            "mode": mode,
            "known": mine[mode]["val"],
            "naive": {"rel_l1": 1.0, "median_rel_l2": 1.0},
            "by_mode": {
                m: {
                    **r["val"],
                    "best_epoch": r["best_epoch"],
                    "stopped": r["stopped"],
                    "seconds": round(r["seconds"], 1),
                }
                for m, r in mine.items()
            },
            **baseline_figures(meta.val[g], g),
        }
        curves[g] = {m: r["curve"] for m, r in mine.items()}
    out = Path(out)
    card = {
        "format": "know_core.known-card/1",
        "checkpoint": out.name,
        "command": command,
        "data": {"folder": str(data), **meta.describe(), "collection": _collection_info(Path(data))},
        "recipe": asdict(recipe),
        "validation": validation,
        "curves": curves,
    }
    save_known_checkpoint(out, chosen, {"card": out.with_suffix(".json").name, "seed": recipe.seed})
    if recipe.sample_rows > 0:
        card["sample"] = _write_sample(out, chosen, meta.val, recipe)
    card["sha256"] = sha256_file(out)
    card["time"] = {
        "train_s": round(time.perf_counter() - t0, 1),
        "collect_s": card["data"]["collection"].get("seconds"),
    }
    write_json(out.with_suffix(".json"), card)
    return card


def sample_figures(nets: dict[str, KNOWN], sample: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """The figures of ``nets`` on a shipped validation sample (what the card promises for that sample)."""
    out = {}
    for g, net in nets.items():
        pairs = GroupPairs(*(sample[f"{g}.{k}"] for k in ("x", "y", "w", "block")))
        out[g] = figures(predict_rows(net, pairs.x), pairs)
    return out


def _write_sample(out: Path, nets: dict[str, KNOWN], val: dict[str, GroupPairs], recipe: Recipe) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(recipe.seed)
    tensors = {}
    for g in nets:
        idx = torch.randperm(len(val[g]), generator=gen)[: recipe.sample_rows].sort().values
        for k in ("x", "y", "w", "block"):
            tensors[f"{g}.{k}"] = getattr(val[g], k)[idx].contiguous()
    path = out.with_name(out.stem + ".valsample.safetensors")
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp))
    return {"file": path.name, "rows_per_group": recipe.sample_rows, "figures": sample_figures(nets, tensors)}


def _collection_info(folder: Path) -> dict[str, Any]:
    try:
        summary = json.loads((folder / SUMMARY_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {
        "bytes": summary.get("bytes"),
        "trajectories": summary.get("trajectories"),
        "job_seconds": summary.get("job_seconds"),
        "seconds": round(sum(h.get("seconds", 0) for h in summary["history"]), 1),
        "runs": summary["history"],
    }
