"""A collection folder → training pairs for KNOWN, split by trajectory (never by weight).

Each trajectory [Θ0 … Θ_{S−1}] becomes, per group, the method's (N, S) window matrix (most-forgotten first, Θ0 last);
every 5 consecutive columns ending at θ_k are a window whose target is θ_{k−1}. Weights of one run move together, so a
split by weight would put near-copies of the validation rows into training; the split is by trajectory instead.

Rows are subsampled per (trajectory, window position) so one large MLP does not drown the small CNNs, and each row
carries a weight 1 / mean|θ_k − θ_{k−1}| of its block: the weighted L1 loss is then 1.0 for "keep θ_k" on every
trajectory, whatever the scale of its weights, and every run counts alike. A damaged file is skipped with a warning
and never trained on; a folder with nothing usable is an error.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from know_core.common.errors import DataError
from know_core.engine.windows import to_windows
from know_core.experiment.retrodiction import drift_corrected_film
from know_core.store.legacy import job_protocol

from ..models import GROUPS
from ..predictors.known_net import STAGES as WINDOW  # KNOWN's window length, defined once with its network
from .trajfile import CorruptTrajectory, read_trajectory_file

# What a window is trained to predict: "backward" the film's own previous stage (θ_{k−1} from θ_{k+4}…θ_k, the
# method); "warm" the warm oracle Θ_{−1} from the window ending at Θ0; "dc" the backward step on the drift-corrected
# film Θ'_s = Θ_s − (C_s − Θ0). "warm" and "dc" use only the files that recorded warm oracles / a control film.
TARGETS = ("backward", "warm", "dc")
MIN_STEP = 1e-12  # blocks whose weights did not move at all carry no information and are dropped


@dataclass
class GroupPairs:
    """Training pairs of one group: windows (M, 5), targets (M,), row weights (M,), block index (M,)."""

    x: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor
    block: torch.Tensor  # trajectory index * 8 + window position: the unit of the median figures

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class MetaDataset:
    """Per split and group, the pairs; plus which trajectories went where and what was skipped."""

    train: dict[str, GroupPairs]
    val: dict[str, GroupPairs]
    train_ids: list[str]
    val_ids: list[str]
    skipped: list[str] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {"trajectories": len(self.train_ids) + len(self.val_ids), "train_trajectories": len(self.train_ids),
                "val_trajectories": len(self.val_ids), "skipped_files": self.skipped,
                "forgot": sum(bool(j["forgot"]) for j in self.jobs),
                "datasets": sorted({j["job"]["config"]["dataset"] for j in self.jobs}),
                "models": sorted({j["job"]["config"]["model"] for j in self.jobs}),
                "budgets": _count(j["budget"].split(":")[0] for j in self.jobs),
                "protocols": _count(job_protocol(j["job"]["config"]) for j in self.jobs),
                "windows": {split: {g: len(p) for g, p in pairs.items()}
                            for split, pairs in (("train", self.train), ("val", self.val))}}


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def split_ids(ids: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train ids, val ids): trajectories ranked by a seeded hash, the first ``val_fraction`` (≥ 1) to validation."""
    ranked = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    n_val = max(1, round(len(ids) * val_fraction)) if len(ids) > 1 else 0
    return sorted(ranked[n_val:]), sorted(ranked[:n_val])


def trajectory_pairs(states: list[dict[str, torch.Tensor]], groups: dict[str, str], max_rows: int,
                     seed: int) -> dict[str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """Per group, one (windows, targets, weights) triple per window position, at most ``max_rows`` rows each."""
    out: dict[str, list] = {}
    gen = torch.Generator().manual_seed(seed)
    for group, mat in to_windows(states, groups).items():
        blocks = []
        for c in range(mat.shape[1] - WINDOW):
            x, y = mat[:, c:c + WINDOW], mat[:, c + WINDOW]
            scale = float((x[:, -1] - y).abs().mean())
            if not scale > MIN_STEP or not bool(torch.isfinite(mat).all()):
                continue
            if len(y) > max_rows:
                keep = torch.randperm(len(y), generator=gen)[:max_rows]
                x, y = x[keep], y[keep]
            blocks.append((x.contiguous(), y.contiguous(), torch.full((len(y),), 1.0 / scale)))
        if blocks:
            out[group] = blocks
    return out


def warm_pairs(states: list[dict[str, torch.Tensor]], warm: dict[str, torch.Tensor], groups: dict[str, str],
               max_rows: int, seed: int) -> dict[str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """Per group, one block: the window ending at Θ0 and the warm oracle Θ_{−1} as its target."""
    return trajectory_pairs([warm] + states[:WINDOW], groups, max_rows, seed)


def load_metadataset(folder: str | Path, val_fraction: float = 0.2, seed: int = 0,
                     max_rows: int = 4000, target: str = "backward") -> MetaDataset:
    """Every readable trajectory file in ``folder`` as training and validation pairs (split by trajectory)."""
    if target not in TARGETS:
        raise DataError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"meta-dataset folder {folder} does not exist; make it with `python -m know_core collect`")
    loaded, skipped, jobs = {}, [], []
    for path in sorted(folder.glob("*.safetensors")):
        try:
            if target == "backward":
                (states, meta), warm, control = read_trajectory_file(path), None, None
            else:
                states, meta, warm, control = read_trajectory_file(path, films=True)
        except CorruptTrajectory as exc:
            warnings.warn(f"skipping {exc}", stacklevel=2)
            skipped.append(path.name)
            continue
        tid = path.stem
        seed_t = int(hashlib.sha256(f"{seed}:{tid}".encode()).hexdigest()[:8], 16)
        if target == "warm":
            if warm is None:
                continue
            loaded[tid] = warm_pairs(states, warm.states[0], meta["groups"], max_rows, seed_t)
        elif target == "dc":
            if control is None or len(control.states) < len(states) - 1:
                continue

            loaded[tid] = trajectory_pairs(drift_corrected_film(states, control, meta["groups"]), meta["groups"],
                                           max_rows, seed_t)
        else:
            loaded[tid] = trajectory_pairs(states, meta["groups"], max_rows, seed_t)
        jobs.append(meta)
    loaded = {tid: pairs for tid, pairs in loaded.items() if pairs}
    if not loaded:
        raise DataError(f"empty meta-dataset: no usable trajectory file in {folder} "
                        f"({len(skipped)} damaged file(s) skipped); run `python -m know_core collect --out {folder}`")
    train_ids, val_ids = split_ids(sorted(loaded), val_fraction, seed)
    index = {tid: k for k, tid in enumerate(sorted(loaded))}
    return MetaDataset(_stack(loaded, train_ids, index), _stack(loaded, val_ids, index), train_ids, val_ids,
                       skipped, jobs)


def _stack(loaded: dict[str, dict[str, list]], ids: list[str], index: dict[str, int]) -> dict[str, GroupPairs]:
    parts: dict[str, list] = {g: [] for g in GROUPS}
    for tid in ids:
        for group, blocks in loaded[tid].items():
            for pos, (x, y, w) in enumerate(blocks):
                parts[group].append((x, y, w, torch.full((len(y),), index[tid] * 8 + pos, dtype=torch.long)))
    return {g: GroupPairs(*(torch.cat([p[i] for p in rows]) for i in range(4))) for g, rows in parts.items() if rows}
