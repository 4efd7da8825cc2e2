"""A user's own ``torch.utils.data.Dataset`` made resident: its (x, y) items read once into tensors, the form every
film trains on (see the package's docstring), with a clear refusal for items that are not (tensor, class) pairs and
for data too big to hold in memory.

No dataset is registered here: this is how data that is not registered enters a forgetting run
(``know_core.api.record_forgetting`` and ``forget --data-factory``).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from know_core.common.errors import DataError
from know_core.common.hooks import Hooks
from know_core.data import Dataset, stratified_split
from know_core.models import free_bytes

RESIDENT_LIMIT = 8 << 30  # at most 8 GiB of resident data, and at most half the memory free now
HELD_OUT = 0.2  # without a test set, this share of the training set (class-stratified, fixed seed) is the test set
_LABEL = (numbers.Integral, np.integer)


def resident_limit() -> int:
    """Bytes a user's data may take once resident: :data:`RESIDENT_LIMIT` or half the free memory, the smaller."""
    return min(RESIDENT_LIMIT, free_bytes(torch.device("cpu")) // 2)


def _label(y: object, where: str) -> int:
    if isinstance(y, torch.Tensor) and y.ndim == 0 and not y.is_floating_point() and y.dtype != torch.bool:
        y = int(y)
    if isinstance(y, bool) or not isinstance(y, _LABEL) or int(y) < 0:
        raise DataError(f"{where}: the label must be a class index (an int >= 0), got {_what(y)}")
    return int(y)


def _what(v: object) -> str:
    if isinstance(v, torch.Tensor):
        return f"a {v.dtype} tensor of shape {tuple(v.shape)}"
    return f"{type(v).__name__} {str(v)[:40]!r}" if isinstance(v, (int, float, str)) else type(v).__name__


def _inputs(x: torch.Tensor) -> torch.Tensor:
    """Floating inputs as float32 (what the models train in); other dtypes (token ids) as they are."""
    return x.to(torch.float32) if x.is_floating_point() else x


def _check_size(n: int, item_bytes: int, shape: tuple[int, ...], what: str, limit: int) -> None:
    need = n * item_bytes
    if need > limit:
        raise DataError(f"{what}: {n:,} items of shape {'×'.join(map(str, shape)) or 'scalar'} need "
                        f"{need / 2**30:.2f} GiB resident, more than the limit of {limit / 2**30:.2f} GiB "
                        f"(the smaller of {RESIDENT_LIMIT / 2**30:.0f} GiB and half the free memory); use fewer or "
                        "smaller items")


def materialise(data: object, what: str, hooks: Hooks | None = None,
                limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``data`` (a map-style torch Dataset of (tensor, class index) items, or a TensorDataset of two tensors) read
    into (x, y) tensors; a DataError naming ``what`` and the first bad item otherwise, or when it would not fit."""
    hooks = hooks or Hooks()
    limit = resident_limit() if limit is None else limit
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise DataError(f"{what} must be a map-style torch Dataset (with __getitem__ and __len__), got "
                        f"{type(data).__name__}")
    tensors = getattr(data, "tensors", None)
    if isinstance(tensors, tuple) and len(tensors) == 2 and all(isinstance(t, torch.Tensor) for t in tensors):
        x, y = tensors
        if y.ndim != 1 or y.is_floating_point() or y.dtype == torch.bool or len(y) != len(x):
            raise DataError(f"{what}: the labels must be one class index per item (a 1-D integer tensor), got "
                            f"{_what(y)} for {len(x)} inputs")
        _check_size(len(x), x[0].numel() * 4 + 8 if len(x) else 0, tuple(x.shape[1:]), what, limit)
        if len(y) and int(y.min()) < 0:
            raise DataError(f"{what}: labels must be class indices >= 0, found {int(y.min())}")
        return _inputs(x).contiguous(), y.to(torch.long)
    n = len(data)
    if n == 0:
        raise DataError(f"{what} is empty")
    xs: list[torch.Tensor] = []
    ys: list[int] = []
    for i in range(n):
        if i % 256 == 0:
            hooks.check()
            hooks.report("reading data", i, n)
        item = data[i]
        where = f"{what}[{i}]"
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DataError(f"{where} must be an (input tensor, class index) pair, got {_what(item)}"
                            + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else ""))
        x, y = item
        if not isinstance(x, torch.Tensor):
            raise DataError(f"{where}: the input must be a tensor, got {_what(x)} (give the dataset a transform that "
                            "returns one, e.g. torchvision.transforms.ToTensor())")
        if xs and x.shape != xs[0].shape:
            raise DataError(f"{where}: input of shape {tuple(x.shape)}, but item 0's is {tuple(xs[0].shape)}; every "
                            "input must have the same shape")
        if not xs:
            _check_size(n, x.numel() * 4 + 8, tuple(x.shape), what, limit)
        xs.append(x.detach())
        ys.append(_label(y, where))
    hooks.report("reading data", n, n)
    return _inputs(torch.stack(xs)).contiguous(), torch.tensor(ys, dtype=torch.long)


def resident_dataset(name: str, train: object, test: object | None = None, hooks: Hooks | None = None,
                     limit: int | None = None) -> Dataset:
    """The user's training set (and test set; without one, a fixed class-stratified fifth of the training set is held
    out as the test set) as a :class:`Dataset` named ``name``; the class count is the largest label plus one."""
    limit = resident_limit() if limit is None else limit
    x, y = materialise(train, "train_set", hooks, limit)
    if test is None:
        tr, te = stratified_split(y.numpy(), HELD_OUT)
        x_test, y_test = x[torch.from_numpy(te)], y[torch.from_numpy(te)]
        x, y = x[torch.from_numpy(tr)], y[torch.from_numpy(tr)]
    else:
        x_test, y_test = materialise(test, "test_set", hooks, limit - x.numel() * x.element_size())
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"test_set inputs have shape {tuple(x_test.shape[1:])}, the training set's "
                            f"{tuple(x.shape[1:])}")
    if len(y_test) == 0:
        raise DataError("the test set is empty (a training set this small leaves nothing to hold out)")
    num_classes = int(max(y.max(), y_test.max())) + 1
    if len(torch.unique(y)) < 2:
        raise DataError(f"train_set holds {len(torch.unique(y))} class; forgetting needs at least 2")
    return Dataset(name, x, y, x_test, y_test, num_classes)
