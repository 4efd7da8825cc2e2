"""Rotated domains of any registered dataset, after DomainBed's RotatedMNIST: the target ``rotated:BASE``.

The images of ``BASE`` (its train and test parts pooled) are shuffled once with a fixed seed and dealt into six
disjoint shares, one per domain; share ``i`` is rotated by ``ANGLES[i]`` degrees. A held-out domain is left out of
training entirely: the target's training images are drawn from the other five domains, its test set is the held-out
domain's whole share (leave-one-domain-out). Rotations are tensor ops on the run's device (``torch.rot90`` at
multiples of 90°, so exact there; bilinear ``grid_sample`` elsewhere, the corners filled with the background), made
once per (dataset, angle, device) and cached in the process.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from know_core.common.errors import ConfigError

from . import _SPLIT_SEED, Dataset, load_dataset

PREFIX = "rotated:"
ANGLES = (0, 15, 30, 45, 60, 75)


def has_domains(name: str) -> bool:
    """Whether the target ``name`` is split into domains (``rotated:BASE``)."""
    return str(name).startswith(PREFIX)


def base_of(name: str) -> str:
    """The dataset spec behind a domain target (``rotated:fashion-mnist:5-9`` → ``fashion-mnist:5-9``), else ``name``.
    """
    return str(name)[len(PREFIX) :] if has_domains(name) else str(name)


def held_out_domains(name: str, test_domain: str) -> list[int | None]:
    """The held-out domains ``test_domain`` asks of the target ``name``: ``all`` → every angle, ``75`` → [75]; a
    target without domains has one, None, and takes only ``all``. Anything else is a ConfigError naming it."""
    text = str(test_domain).strip().lower().removesuffix("°")
    if not has_domains(name):
        if text != "all":
            raise ConfigError(
                f"test_domain {test_domain!r}: target {name!r} has no domains (use a target like "
                f"{PREFIX}fashion-mnist, or test_domain=all)"
            )
        return [None]
    if not base_of(name):
        raise ConfigError(f"target {name!r}: name a dataset after {PREFIX!r}, e.g. {PREFIX}mnist-5k")
    if text == "all":
        return list(ANGLES)
    try:
        angle = float(text)
    except ValueError:
        angle = math.nan
    if angle not in ANGLES:
        raise ConfigError(
            f"test_domain {test_domain!r} is not one of the domains of {name}: "
            f"{', '.join(map(str, ANGLES))} (degrees) or all"
        )
    return [int(angle)]


def rotate(x: torch.Tensor, angle: float, fill: float = 0.0) -> torch.Tensor:
    """Images (N, C, H, W) rotated counter-clockwise by ``angle`` degrees about their centre, on their device.

    Multiples of 90° are ``torch.rot90`` (exact: four quarter turns give the images back bit for bit); other angles
    sample bilinearly, and what comes in from outside the image is ``fill``.
    """
    quarter = angle / 90
    if quarter == int(quarter):
        return torch.rot90(x, int(quarter) % 4, dims=(-2, -1))
    a = math.radians(angle)
    theta = torch.tensor(
        [[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]], dtype=x.dtype, device=x.device
    ).expand(len(x), 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill


def domain_shares(n: int, domains: int = len(ANGLES)) -> list[torch.Tensor]:
    """``domains`` disjoint index sets covering 0..n−1 (sizes within one), from one fixed-seed shuffle."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(_SPLIT_SEED))
    return list(torch.tensor_split(order, domains))


@lru_cache(maxsize=4)
def _pooled(base: str, data_root: str | None) -> tuple[Dataset, torch.Tensor, torch.Tensor, float]:
    """``base``'s train and test images pooled (DomainBed's RotatedMNIST pools them too), with the background value."""
    ds = load_dataset(base, data_root)
    x, y = torch.cat([ds.x_train, ds.x_test]), torch.cat([ds.y_train, ds.y_test])
    return ds, x, y, float(x.amin())


@lru_cache(maxsize=16)
def _domain(base: str, angle: int, data_root: str | None, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The images and labels of one domain on ``device``: its share of the pool, rotated by ``angle``."""
    _, x, y, fill = _pooled(base, data_root)
    idx = domain_shares(len(y))[ANGLES.index(angle)]
    return rotate(x[idx].to(device), angle, fill), y[idx].to(device)


def domain_target(
    name: str, held_out: int | None, data_root: str | None, device: torch.device | str = "cpu"
) -> tuple[Dataset, torch.Tensor]:
    """The target task with ``held_out`` left out: training images from every other domain, test images the held-out
    domain's share; and the strata to balance the training draw by (class × domain). A target without domains
    (``held_out`` None) is the dataset itself, balanced by class."""
    if held_out is None:
        ds = load_dataset(name, data_root)
        return ds, ds.y_train
    base = base_of(name)
    ds = _pooled(base, data_root)[0]
    parts = {a: _domain(base, a, data_root, str(device)) for a in ANGLES}
    train = [a for a in ANGLES if a != held_out]
    x_train = torch.cat([parts[a][0] for a in train])
    y_train = torch.cat([parts[a][1] for a in train])
    strata = torch.cat([parts[a][1] + ds.num_classes * k for k, a in enumerate(train)])
    x_test, y_test = parts[held_out]
    return Dataset(
        f"{name} (held-out {held_out}°)", x_train, y_train, x_test, y_test, ds.num_classes, ds.default_batch_size
    ), strata.cpu()
