"""Validated, nested dataclass configs; the resolved config is saved beside every run.

A config is built from defaults plus overrides (``from_dict``), checked once by ``validate`` with messages that name
the offending field, and written back out with ``to_dict`` so a run folder always records exactly what ran.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")
OPTIMIZERS = ("adam", "adamw", "sgd")
PRETRAIN_UNTIL = ("val_acc", "plateau")
AUGMENTS = ("none", "shift", "flip", "shift+flip")
WARM_MODES = ("auto", "on", "off")


@dataclass
class OptimConfig:
    """Optimiser recipe shared by pre-training and the forgetting stages."""

    optimizer: str = "adam"  # "adam", "adamw" (decoupled weight decay) or "sgd"
    lr: float = 1e-3
    batch_size: int | None = None  # None: the dataset's recommended size (128 as released, smaller for tiny sets)
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optim.optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        check_positive("optim.lr", self.lr)
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ConfigError(f"optim.batch_size must be a positive integer, got {self.batch_size!r}")
        if not (isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise ConfigError(f"optim.weight_decay must be >= 0, got {self.weight_decay!r}")
        if not (0 <= self.momentum < 1):
            raise ConfigError(f"optim.momentum must be in [0, 1), got {self.momentum!r}")


@dataclass
class PretrainConfig:
    """How Θ0 is made. By default training goes on until validation accuracy stops improving, because an
    under-trained Θ0 keeps learning during the subset fine-tunes instead of forgetting (docs/method.md).
    ``until="plateau"`` trains instead until the training loss stops falling (a converged Θ0, not a stopped one)."""

    max_epochs: int = 100
    early_stop: bool = True  # False: train exactly max_epochs
    patience: int = 10  # epochs without improvement before stopping
    val_fraction: float = 0.1  # of the source training set, held out of D0 to judge convergence
    until: str = "val_acc"  # val_acc: validation accuracy stops improving; plateau: training loss stops falling

    def validate(self) -> None:
        check_int_at_least("pretrain.max_epochs", self.max_epochs, 1)
        check_int_at_least("pretrain.patience", self.patience, 1)
        if self.until not in PRETRAIN_UNTIL:
            raise ConfigError(f"pretrain.until must be one of {', '.join(PRETRAIN_UNTIL)}, got {self.until!r}")
        if not (0 < self.val_fraction < 0.5):
            raise ConfigError(f"pretrain.val_fraction must be in (0, 0.5), got {self.val_fraction!r}")


@dataclass
class ForgetConfig:
    """A structured-forgetting run: pre-train Θ0 on D0, then fine-tune sequentially on nested D_s = ⌊|D0|·r^s⌋."""

    dataset: str = "digits"
    model: str = "simple_cnn"
    r: float = 0.5
    stages: int = 5  # S: Θ0 plus S-1 forgetting stages
    stage_budget: str = "epochs:1"  # per stage: epochs:N (release: epochs:1), steps:N or converge[:max epochs]
    seed: int = 0
    d0_fraction: float = 1.0  # share of the (non-validation) source training pool used as D0
    balanced: bool = False  # class-balanced nested subsets
    carry_optimizer: bool = True  # keep the optimiser state across stages, as released
    augment: str = "none"  # on-device augmentation in every training loop: none, shift, flip, shift+flip
    warm: str = "auto"  # warm oracles Θ_{-k} and the same-data control film: auto (where the pool holds), on, off
    protocol: str = "custom"  # the named protocol these settings came from (see protocols.py); informational
    forget_lr: float | None = None  # None: same as optim.lr
    device: str = "auto"
    data_root: str | None = None
    optim: OptimConfig = field(default_factory=OptimConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)

    def validate(self) -> None:
        if not isinstance(self.r, (int, float)) or not (0 < self.r < 1):
            raise ConfigError(f"r must be strictly between 0 and 1, got {self.r!r}")
        if not isinstance(self.stages, int) or self.stages < 2:
            raise ConfigError(f"stages must be an integer >= 2 (Θ0 plus at least one forgetting stage), got {self.stages!r}")
        from .stages import parse_budget  # the budget grammar lives with the code that runs it

        parse_budget(self.stage_budget)
        if self.augment not in AUGMENTS:
            raise ConfigError(f"augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")
        if self.warm not in WARM_MODES:
            raise ConfigError(f"warm must be one of {', '.join(WARM_MODES)}, got {self.warm!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not (0 < self.d0_fraction <= 1):
            raise ConfigError(f"d0_fraction must be in (0, 1], got {self.d0_fraction!r}")
        if self.forget_lr is not None:
            check_positive("forget_lr", self.forget_lr)
        if not isinstance(self.device, str) or not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        self.optim.validate()
        self.pretrain.validate()


def check_positive(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


def check_int_at_least(name: str, value: Any, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain JSON-ready data."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any], _prefix: str = "") -> T:
    """Build ``cls`` from (possibly partial) nested data; unknown keys are errors naming the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{_prefix or 'config'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if cls is ForgetConfig and "epochs" in data and "stage_budget" not in data:  # runs recorded before stage budgets
        data = {**{k: v for k, v in data.items() if k != "epochs"}, "stage_budget": f"epochs:{data['epochs']}"}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"unknown config key {_prefix + key!r}; known: {', '.join(sorted(fields))}")
        default = fields[key].default_factory() if fields[key].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            kwargs[key] = from_dict(type(default), value, _prefix=f"{_prefix}{key}.")
        else:
            kwargs[key] = value
    return cls(**kwargs)


def with_overrides(cfg: T, overrides: dict[str, Any]) -> T:
    """A copy of ``cfg`` with dotted-key overrides applied, e.g. ``{"optim.lr": 0.01, "r": 0.3}``."""
    data = to_dict(cfg)
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown config key {dotted!r}")
            node = node[part]
        if leaf not in node:
            raise ConfigError(f"unknown config key {dotted!r}")
        node[leaf] = value
    return from_dict(type(cfg), data)
