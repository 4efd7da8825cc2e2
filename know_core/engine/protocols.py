"""Named forgetting protocols: bundles of stage budget, optimiser handling and pre-training rule.

- ``release`` reproduces the official collector: one epoch per stage (steps shrink with the subset), Adam with its
  state carried across stages, no weight decay, no augmentation, Θ0 stopped on validation accuracy.
- ``equal-steps`` (the default, chosen by measurement — docs/forgetting.md): every stage gets the same number of
  optimiser steps, three epochs' worth of D0, with a fresh Adam at each stage, so the small subsets are really fitted
  and the film records the loss of data rather than a shrinking step schedule.

:func:`resolve_source` is the one override path of a source config (CLI flags, ``--set``, the Experiments form): the
overrides, then the protocol resolved for the resulting data and D0, then the overrides again, so a flag such as
``--stage-budget`` still wins; the config records ``protocol`` as ``<name>`` when it matches the bundle and
``<name>+custom`` when an override changed one of its fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from know_core.common.errors import ConfigError
from know_core.common.fields import check_range
from know_core.common.registry import Entry, Registry
from know_core.data import Dataset, load_dataset
from know_core.engine.budget import StageBudget, steps_per_epoch
from know_core.engine.config import ForgetConfig, with_overrides
from know_core.engine.forgetting import resolved_batch_size, source_split

DEFAULT_PROTOCOL = "equal-steps"
PROTOCOL_KEYS = ("stage_budget", "optim.optimizer", "optim.weight_decay", "carry_optimizer", "augment",
                 "pretrain.until")  # what a protocol sets; overriding one marks the protocol "+custom"
EQUAL_STEPS_EPOCHS = 3  # epochs of D0 per stage, in optimiser steps


@dataclass(frozen=True)
class Protocol:
    """A protocol's settings as typed fields, one per key of :data:`PROTOCOL_KEYS` (and ``forget_lr`` cleared).
    The stage budget is either fixed (``budget``) or ``d0_epochs`` epochs of D0 in optimiser steps: only the latter
    needs the data (D0's size and the batch size), so only it loads the dataset."""

    name: str
    help: str
    carry_optimizer: bool
    budget: StageBudget | None = None
    d0_epochs: int = 0
    optimizer: str = "adam"
    weight_decay: float = 0.0
    augment: str = "none"
    until: str = "val_acc"

    def stage_budget(self, cfg: ForgetConfig, ds: Dataset | None = None) -> StageBudget:
        """The budget this protocol gives ``cfg`` (resolved for its data — ``ds``, else the dataset ``cfg`` names —
        and D0 when it counts epochs of D0)."""
        if self.budget is not None:
            return self.budget
        d0, batch = _d0_and_batch(cfg, ds)

        return StageBudget("steps", self.d0_epochs * steps_per_epoch(d0, batch))

    def apply(self, cfg: ForgetConfig, ds: Dataset | None = None) -> ForgetConfig:
        """``cfg`` with this protocol's settings and ``protocol=name`` (``ds``: the data, when not ``cfg.dataset``)."""
        return dataclasses.replace(
            cfg, stage_budget=self.stage_budget(cfg, ds), carry_optimizer=self.carry_optimizer, augment=self.augment,
            forget_lr=None, protocol=self.name,
            optim=dataclasses.replace(cfg.optim, optimizer=self.optimizer, weight_decay=self.weight_decay),
            pretrain=dataclasses.replace(cfg.pretrain, until=self.until))


def _d0_and_batch(cfg: ForgetConfig, ds: Dataset | None = None) -> tuple[int, int]:
    """|D0| and the batch size of ``cfg``'s data: the one part of a protocol that loads the dataset."""
    for part, key, what in (("", "seed", "an integer"), ("", "d0_fraction", "a number"),
                            ("pretrain.", "val_fraction", "a number"), ("optim.", "batch_size", "an integer")):
        section = getattr(cfg, part[:-1]) if part else cfg
        if getattr(section, key) is not None:  # what the split reads; the config is validated at the boundary
            check_range(section, key, what, section=part)
    ds = ds or load_dataset(cfg.dataset, cfg.data_root)
    return source_split(ds, cfg).n0, resolved_batch_size(cfg, ds)


RELEASE = Protocol("release", "the official collector: epochs:1 per stage, Adam carried across stages",
                   carry_optimizer=True, budget=StageBudget("epochs", 1))
EQUAL_STEPS = Protocol("equal-steps", f"{EQUAL_STEPS_EPOCHS} epochs of D0 in optimiser steps on every stage, fresh "
                                      "Adam per stage", carry_optimizer=False, d0_epochs=EQUAL_STEPS_EPOCHS)
PROTOCOLS = Registry("protocol", ConfigError)  # name -> Entry(factory=the Protocol, help), listed in this order
for _order, _protocol in enumerate((RELEASE, EQUAL_STEPS)):
    PROTOCOLS.add(Entry(_protocol.name, _protocol, _protocol.name, _protocol.help, order=_order))


def apply_protocol(cfg: ForgetConfig, name: str, ds: Dataset | None = None) -> ForgetConfig:
    """``cfg`` with the protocol's settings (resolved for its dataset and D0 size where they depend on them) and
    ``protocol=name``."""
    return PROTOCOLS.get(name).factory.apply(cfg, ds)


def describe(cfg: ForgetConfig) -> str:
    """One line for every page and command that shows a run: the protocol's name and what it set."""
    o = cfg.optim
    opt = f"{o.optimizer}{f' wd {o.weight_decay:g}' if o.weight_decay else ''}"
    carry = "carried" if cfg.carry_optimizer else "fresh per stage"
    aug = "" if cfg.augment == "none" else f", augment {cfg.augment}"
    return (f"protocol {cfg.protocol}: stage budget {cfg.stage_budget}, {opt} ({carry}), Θ0 until "
            f"{cfg.pretrain.until.replace('_', ' ')}{aug}")


def resolve_source(cfg: ForgetConfig, protocol: str | None, overrides: dict[str, Any],
                   ds: Dataset | None = None) -> ForgetConfig:
    """``cfg`` with dotted ``overrides`` (text parsed by each field's type), the named ``protocol`` resolved for the
    result's data and D0, then the overrides on top again; not validated (the caller's boundary does that once)."""
    cfg = with_overrides(cfg, overrides)
    if protocol:
        cfg = with_overrides(apply_protocol(cfg, protocol, ds), overrides)
    if any(k in PROTOCOL_KEYS for k in overrides) and cfg.protocol != "custom" and not cfg.protocol.endswith("+custom"):
        cfg = dataclasses.replace(cfg, protocol=cfg.protocol + "+custom")
    return cfg
