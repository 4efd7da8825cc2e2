"""torchvision datasets already on disk under --data-root (never downloaded here: tests must run offline)."""

from __future__ import annotations

import os

import numpy as np
import torch

from know_core.common.errors import DataError

from . import Dataset, normalised, register_dataset

_TORCHVISION = {"mnist": "MNIST", "kmnist": "KMNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def torchvision_dataset(name: str, cls_name: str, root: str | None) -> Dataset:
    """A torchvision dataset already on disk under ``root`` (never downloaded here: tests must run offline)."""
    import torchvision

    root = root or os.environ.get("KNOW_DATA_ROOT")
    how = (f"{name} is not on disk: pass --data-root DIR where torchvision's {cls_name} folder lives (on a machine "
           f"with internet: torchvision.datasets.{cls_name}(DIR, download=True))")
    if root is None:
        raise DataError(how)
    cls = getattr(torchvision.datasets, cls_name)
    try:
        train, test = cls(root, train=True, download=False), cls(root, train=False, download=False)
    except (RuntimeError, OSError) as exc:
        raise DataError(f"{how} (looked in {root}: {exc})") from exc

    def arrays(ds) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(ds.data.numpy() if torch.is_tensor(ds.data) else ds.data, dtype=np.float32) / 255.0
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return x, np.asarray(ds.targets)

    return normalised(name, *arrays(train), *arrays(test))


for _name, _cls in _TORCHVISION.items():
    register_dataset(_name, f"torchvision {_cls} from --data-root (or $KNOW_DATA_ROOT)")(
        lambda root, _n=_name, _c=_cls: torchvision_dataset(_n, _c, root))
