"""A small seeded synthetic set of class prototypes plus noise, for tests."""

from __future__ import annotations

import numpy as np

from . import Dataset, normalised, register_dataset, stratified_split


@register_dataset("synthetic", "a small seeded synthetic set of 1×8×8 class prototypes plus noise, for tests")
def _synthetic(_root: str | None) -> Dataset:
    rng = np.random.default_rng(7)
    n_classes, n_per_class = 4, 300
    prototypes = rng.normal(size=(n_classes, 1, 8, 8)).astype(np.float32)
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = prototypes[y] + 3.0 * rng.normal(size=(len(y), 1, 8, 8)).astype(np.float32)
    tr, te = stratified_split(y, 0.25)
    return normalised("synthetic", x[tr], y[tr], x[te], y[te], default_batch_size=32)
