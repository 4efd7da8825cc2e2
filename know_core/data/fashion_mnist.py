"""Fashion-MNIST from Debian's dataset-fashion-mnist files (IDX), or torchvision's layout under --data-root."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from know_core.common.errors import DataError

from . import Dataset, normalised, register_dataset
from .torchvision_sets import torchvision_dataset

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file as used by MNIST-style datasets."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {data.size}")
    return data.reshape(dims)


def fashion_mnist_available() -> bool:
    """Whether Debian's dataset-fashion-mnist files are installed (the offline Fashion-MNIST)."""
    return (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists()


@register_dataset("fashion-mnist", "Fashion-MNIST 60k/10k: Debian package dataset-fashion-mnist "
                  "(apt-get install -y dataset-fashion-mnist), or torchvision's layout under --data-root")
def _fashion_mnist(root: str | None) -> Dataset:
    if root is None and fashion_mnist_available():
        d = DEBIAN_FASHION_MNIST
        parts = [_read_idx(d / f"{split}-{kind}.gz") for split in ("train", "t10k")
                 for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]
        x_tr, y_tr, x_te, y_te = parts
        return normalised("fashion-mnist", x_tr[:, None] / 255.0, y_tr, x_te[:, None] / 255.0, y_te)
    if root is None:
        raise DataError("fashion-mnist not found: install it with `apt-get install -y dataset-fashion-mnist` "
                        f"(files under {DEBIAN_FASHION_MNIST}) or pass --data-root DIR holding torchvision's "
                        "FashionMNIST folder")
    return torchvision_dataset("fashion-mnist", "FashionMNIST", root)
