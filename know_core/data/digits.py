"""scikit-learn's 8×8 digits: always installed, the embedded default."""

from __future__ import annotations

import numpy as np

from . import Dataset, normalised, register_dataset, stratified_split


@register_dataset("digits", "scikit-learn's 1,797 8×8 handwritten digits; always installed (the embedded default)")
def _digits(_root: str | None) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None] / 16.0
    y = bunch.target.astype(np.int64)
    tr, te = stratified_split(y, 0.2)
    return normalised("digits", x[tr], y[tr], x[te], y[te], default_batch_size=32)
