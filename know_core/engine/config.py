"""Validated, nested dataclass configs; the resolved config is saved beside every run.

A config is built from defaults plus overrides (``from_dict``), checked once by ``validate`` with messages that name
the offending field, and written back out with ``to_dict`` so a run folder always records exactly what ran.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

from know_core.common.errors import ConfigError
from know_core.common.fields import check_range, field_of, knob, parse_value
from know_core.engine.budget import BUDGET_HELP, StageBudget, parse_budget
from know_core.store.legacy import forget_config_budget

T = TypeVar("T")
OPTIMIZERS = ("adam", "adamw", "sgd")
PRETRAIN_UNTIL = ("val_acc", "plateau")
AUGMENTS = ("none", "shift", "flip", "shift+flip")
WARM_MODES = ("auto", "on", "off")


@dataclass
class OptimConfig:
    """Optimiser recipe shared by pre-training and the forgetting stages."""

    optimizer: str = knob("adam", help="adamw: decoupled weight decay", choices=OPTIMIZERS)
    lr: float = knob(1e-3, help="learning rate", low=0, open="low", flag="--lr")
    batch_size: int | None = knob(None, help="default: the dataset's (128 as released)", low=1, flag="--batch-size")
    weight_decay: float = knob(0.0, help="weight decay", low=0)
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

    max_epochs: int = knob(100, help="most pre-training epochs", low=1, flag="--pretrain-epochs")
    early_stop: bool = True  # False: train exactly max_epochs
    patience: int = knob(10, help="epochs without improvement before stopping", low=1)
    val_fraction: float = knob(0.1, help="share of the source training set held out of D0 to judge convergence",
                               low=0, high=0.5, open="both")
    until: str = knob("val_acc", flag="--pretrain-until", choices=PRETRAIN_UNTIL,
                      help="Θ0: until validation accuracy stops improving, or until the training loss plateaus")

    def validate(self) -> None:
        check_int_at_least("pretrain.max_epochs", self.max_epochs, 1)
        check_int_at_least("pretrain.patience", self.patience, 1)
        if self.until not in PRETRAIN_UNTIL:
            raise ConfigError(f"pretrain.until must be one of {', '.join(PRETRAIN_UNTIL)}, got {self.until!r}")
        check_range(self, "val_fraction", section="pretrain.")


@dataclass
class ForgetConfig:
    """A structured-forgetting run: pre-train Θ0 on D0, then fine-tune sequentially on nested D_s = ⌊|D0|·r^s⌋."""

    dataset: str = "digits"
    model: str = "simple_cnn"
    r: float = knob(0.5, help="sampling rate, |D_s| = |D0|·r^s", low=0, high=1, open="both")
    stages: int = knob(5, help="S: Θ0 plus S−1 forgetting stages", low=2)
    stage_budget: StageBudget = knob(StageBudget("epochs", 1), help=f"training per stage: {BUDGET_HELP}")
    seed: int = knob(0, help="random seed", low=0, high=2**63 - 1)
    d0_fraction: float = knob(1.0, help="share of the source pool used as D0 (below 1 leaves room for the real "
                                        "larger-data models, the oracles)", low=0, high=1, open="low")
    balanced: bool = knob(False, help="class-balanced nested subsets")
    carry_optimizer: bool = knob(True, help="keep the optimiser state across stages (the release) or start each "
                                            "stage fresh")
    augment: str = knob("none", help="on-device augmentation while training", choices=AUGMENTS)
    warm: str = knob(
        "auto",
        flag="--oracles",
        choices=WARM_MODES,
        help="warm oracles Θ₋ₖ and the control film: auto (where the pool holds), on (required), off",
    )
    protocol: str = "custom"  # the named protocol these settings came from (see protocols.py); informational
    forget_lr: float | None = knob(None, help="learning rate of the forgetting stages", low=0, open="low")
    device: str = knob("auto", help="auto, cpu or cuda[:N]")
    data_root: str | None = knob(None, help="folder with torchvision datasets")
    optim: OptimConfig = field(default_factory=OptimConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)

    def __post_init__(self) -> None:
        self.stage_budget = parse_budget(self.stage_budget)  # text in (a file, --set, the form), typed inside

    def steps_of(self, scale: float) -> int:
        """k such that ``scale`` = (1/r)^k, the k-th step past Θ0 (r = 0.5: ×2^k); a scale that is not such a power
        is a ConfigError listing the valid ones (:func:`steps_of_scale`, the rule, rounds instead)."""
        finite = isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 1
        k = _steps_exact(scale, self.r) if finite else math.nan
        if not finite or abs(k - round(k)) > 1e-6:
            raise ConfigError(
                f"scale {scale:g} is not a power of 1/r = {1 / self.r:g} "
                f"(valid: {', '.join(f'{self.scale_of(j):g}' for j in range(1, 4))}, …)"
            )
        return int(round(k))

    def scale_of(self, k: int) -> float:
        """The data scale ×(1/r)^k of the k-th step past Θ0 (k < 0: the stages of the film, r^|k|)."""
        return scale_of_steps(k, self.r)

    def to_json(self) -> str:
        """This config as the canonical JSON text in which it crosses to another process (see :func:`to_json`)."""
        return to_json(self)

    def validate(self) -> None:
        check_range(self, "r")
        check_range(self, "stages", "an integer", " (Θ0 plus at least one forgetting stage)")
        if self.augment not in AUGMENTS:
            raise ConfigError(f"augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")
        if self.warm not in WARM_MODES:
            raise ConfigError(f"warm must be one of {', '.join(WARM_MODES)}, got {self.warm!r}")
        check_range(self, "seed", "an integer")
        check_range(self, "d0_fraction")
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


def steps_of_scale(scale: float, r: float) -> int:
    """The one scale ↔ step rule: ``scale`` = (1/r)^k is k steps past Θ0 (r = 0.5: ×2^k), rounded to the nearest
    k (records read back; a config's own scales are checked exactly by :meth:`ForgetConfig.steps_of`)."""
    return int(round(_steps_exact(scale, r)))


def _steps_exact(scale: float, r: float) -> float:
    return math.log(scale) / math.log(1 / r)


def scale_of_steps(k: int, r: float) -> float:
    """The inverse of :func:`steps_of_scale`: the data scale (1/r)^k of the k-th step past Θ0."""
    return (1 / r) ** k


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain JSON-ready data (a stage budget as the text it was written in)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, StageBudget):
            out[f.name] = str(value)
        elif dataclasses.is_dataclass(value):
            out[f.name] = to_dict(value)
        else:
            out[f.name] = copy.deepcopy(value)
    return out


def to_json(cfg: Any) -> str:
    """The config as canonical JSON text: the one form in which a config crosses to another process."""
    return json.dumps(to_dict(cfg), sort_keys=True, allow_nan=False)


def from_json(cls: type[T], text: str | bytes, what: str = "config") -> T:
    """The other end of :func:`to_json`: the config of type ``cls`` read back and validated once, since the process
    reading it did not build it (a boundary). Malformed JSON is a ConfigError naming ``what``."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} is not a JSON config ({exc})") from None
    cfg = from_dict(cls, data)
    cfg.validate()
    return cfg


def from_dict(cls: type[T], data: dict[str, Any], _prefix: str = "") -> T:
    """Build ``cls`` from (possibly partial) nested data; unknown keys are errors naming the key. Text fields with a
    grammar (the stage budget) are parsed here, once; the result is not validated."""
    if not isinstance(data, dict):
        raise ConfigError(f"{_prefix or 'config'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if cls is ForgetConfig:
        data = forget_config_budget(data)
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
    """A copy of ``cfg`` with dotted-key overrides applied, e.g. ``{"optim.lr": 0.01, "r": "0.3"}``; text values are
    parsed by the field's type (int, float, bool, str, list, None), so ``--set`` and typed callers share this path.
    Unknown keys and unparsable values are ConfigErrors naming the key; the result is not validated here."""
    data = to_dict(cfg)
    for dotted, value in overrides.items():
        _, hint = field_of(type(cfg), dotted)
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = parse_value(dotted, hint, value) if isinstance(value, str) else value
    return from_dict(type(cfg), data)
