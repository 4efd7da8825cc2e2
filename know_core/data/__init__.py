"""Dataset registry: every dataset arrives as normalised, in-memory float tensors, plus nested subsets for forgetting.

Keeping data as tensors (never PIL + DataLoader) is what makes CPU training fast enough to be interactive
(docs/method.md). Each loader returns a :class:`Dataset`; a missing dataset raises :class:`DataError` saying how to get
it.
A new dataset is one file in this package with a loader decorated by :func:`register_dataset` (see ``digits.py``); the
package imports every module in itself, so ``forget --help``, the Experiments form and the pipeline list it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from know_core.common.errors import DataError
from know_core.common.registry import Registry, discover

_SPLIT_SEED = 1234  # the train/test split of datasets without one is fixed, whatever the run's seed


@dataclass(frozen=True)
class Dataset:
    """A classification dataset as normalised float32 tensors of shape (N, C, H, W)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    default_batch_size: int = 128

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def describe(self) -> str:
        c, h, w = self.input_shape
        return (
            f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test, {c}×{h}×{w}, {self.num_classes} classes"
        )


Loader = Callable[[str | None], Dataset]
_REGISTRY = Registry("dataset", DataError)


def register_dataset(name: str, help_text: str, *, label: str = "") -> Callable[[Loader], Loader]:
    """Decorator adding a loader ``f(data_root) -> Dataset`` under ``name``; ``help_text`` says where data is from."""
    return _REGISTRY.decorator(name, help_text, label)


def available_datasets() -> dict[str, str]:
    """Registered dataset names with a line on where each comes from."""
    return _REGISTRY.helps()


def load_dataset(name: str, data_root: str | None = None) -> Dataset:
    """Load (and cache in memory) a registered dataset.

    ``"NAME:CLASSES"`` keeps only some classes, relabelled 0..k−1 in the order given, e.g. ``"fashion-mnist:0-4"``
    or ``"digits:5,6,7,8,9"``: the way to make a source task and a held-out-classes target task from one dataset.
    """
    base, colon, spec = str(name).partition(":")
    _REGISTRY.get(base)  # an unknown name fails here, listing what exists
    ds = _load_cached(base, data_root)
    return _class_subset(ds, name, _parse_classes(spec, ds.num_classes, name)) if colon else ds


def _parse_classes(spec: str, num_classes: int, name: str) -> list[int]:
    classes: list[int] = []
    try:
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            if hi and not 0 <= int(lo) <= int(hi) < num_classes:
                raise ValueError(part)
            classes += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise DataError(f"dataset {name!r}: classes must look like '0-4' or '1,3,5', got {spec!r}") from None
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad or len(set(classes)) != len(classes) or len(classes) < 2:
        raise DataError(f"dataset {name!r}: need at least 2 distinct classes in 0..{num_classes - 1}, got {spec!r}")
    return classes


def _class_subset(ds: Dataset, name: str, classes: list[int]) -> Dataset:
    relabel = torch.full((ds.num_classes,), -1, dtype=torch.long)
    relabel[torch.tensor(classes)] = torch.arange(len(classes))
    keep_tr, keep_te = relabel[ds.y_train] >= 0, relabel[ds.y_test] >= 0
    return Dataset(
        name,
        ds.x_train[keep_tr],
        relabel[ds.y_train[keep_tr]],
        ds.x_test[keep_te],
        relabel[ds.y_test[keep_te]],
        len(classes),
        ds.default_batch_size,
    )


@lru_cache(maxsize=8)
def _load_cached(name: str, data_root: str | None) -> Dataset:
    return _REGISTRY.get(name).factory(data_root)


def normalised(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    default_batch_size: int = 128,
) -> Dataset:
    """Tensors in (N, C, H, W), standardised per channel with the training set's statistics."""
    xt = torch.as_tensor(np.ascontiguousarray(x_train), dtype=torch.float32)
    xs = torch.as_tensor(np.ascontiguousarray(x_test), dtype=torch.float32)
    dims = (0, 2, 3)
    mean, std = xt.mean(dim=dims, keepdim=True), xt.std(dim=dims, keepdim=True).clamp_min(1e-6)
    y_tr = torch.from_numpy(np.array(y_train, dtype=np.int64))
    y_te = torch.from_numpy(np.array(y_test, dtype=np.int64))
    num_classes = int(max(y_tr.max(), y_te.max())) + 1
    return Dataset(
        name,
        ((xt - mean) / std).contiguous(),
        y_tr,
        ((xs - mean) / std).contiguous(),
        y_te,
        num_classes,
        default_batch_size,
    )


def stratified_split(y: np.ndarray, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a shuffled, class-stratified train/test split with a fixed seed."""
    rng = np.random.default_rng(_SPLIT_SEED)
    train, test = [], []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def nested_order(labels: torch.Tensor, seed: int, balanced: bool = False) -> torch.Tensor:
    """One seeded permutation whose prefixes are the nested subsets D0 ⊃ D1 ⊃ ….

    With ``balanced`` the classes are interleaved round-robin (each class shuffled), so every prefix holds each class
    within one sample of the others (as far as the class sizes allow).
    """
    gen = torch.Generator().manual_seed(seed)
    if not balanced:
        return torch.randperm(len(labels), generator=gen)
    per_class = [
        idx[torch.randperm(len(idx), generator=gen)]
        for idx in (torch.nonzero(labels == c).flatten() for c in torch.unique(labels))
    ]
    rank = torch.cat([torch.arange(len(p)) for p in per_class]).float()
    # Sort by (position within class + a per-class offset in [0,1)), which interleaves the classes round-robin.
    offset = torch.cat([torch.full((len(p),), k / len(per_class)) for k, p in enumerate(per_class)])
    order = torch.argsort(rank + offset, stable=True)
    return torch.cat(per_class)[order]


def stage_sizes(n0: int, r: float, stages: int) -> list[int]:
    """|D_s| = ⌊|D0|·r^s⌋ for s = 0..S−1."""
    return [int(np.floor(n0 * r**s + 1e-9)) for s in range(stages)]


discover(__name__, __path__)
