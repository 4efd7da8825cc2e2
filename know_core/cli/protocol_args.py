"""The forgetting-protocol flags shared by ``forget`` and ``demo``: a named protocol, then explicit overrides."""

from __future__ import annotations

import argparse
import dataclasses

from ..config import AUGMENTS, OPTIMIZERS, PRETRAIN_UNTIL, WARM_MODES, ForgetConfig
from ..protocols import DEFAULT_PROTOCOL, PROTOCOLS, apply_protocol
from ..stages import BUDGET_HELP


def add_protocol_args(p: argparse.ArgumentParser, default_protocol: str | None = DEFAULT_PROTOCOL) -> None:
    g = p.add_argument_group("forgetting protocol (a named bundle first, then any of these flags on top)")
    g.add_argument("--protocol", default=default_protocol,
                   help="; ".join(f"{k}: {v[0]}" for k, v in PROTOCOLS.items())
                   + (f" (default {default_protocol})" if default_protocol else " (default: the preset's)"))
    g.add_argument("--stage-budget", default=None, help=f"training per stage: {BUDGET_HELP}")
    g.add_argument("--optimizer", default=None, choices=OPTIMIZERS, help="adamw: decoupled weight decay")
    g.add_argument("--weight-decay", type=float, default=None, help=">= 0")
    g.add_argument("--carry-optimizer", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the optimiser state across stages (the release) or start each stage fresh")
    g.add_argument("--augment", default=None, choices=AUGMENTS, help="on-device augmentation while training")
    g.add_argument("--pretrain-until", default=None, choices=PRETRAIN_UNTIL,
                   help="Θ0: until validation accuracy stops improving, or until the training loss plateaus")
    g.add_argument("--oracles", default=None, choices=WARM_MODES,
                   help="warm oracles Θ_{-k} and the control film: auto (where the pool holds), on (required), off")


def protocol_config(cfg: ForgetConfig, args: argparse.Namespace) -> ForgetConfig:
    """``cfg`` with ``--protocol`` applied, then every explicit flag; the protocol's name gains ``+custom`` when a
    flag changed what the protocol set."""
    if args.protocol:
        cfg = apply_protocol(cfg, args.protocol)
    changed = dict(stage_budget=args.stage_budget, carry_optimizer=args.carry_optimizer, augment=args.augment)
    changed = {k: v for k, v in changed.items() if v is not None}
    optim = {k: v for k, v in dict(optimizer=args.optimizer, weight_decay=args.weight_decay).items() if v is not None}
    if optim:
        changed["optim"] = dataclasses.replace(cfg.optim, **optim)
    if args.pretrain_until:
        changed["pretrain"] = dataclasses.replace(cfg.pretrain, until=args.pretrain_until)
    if changed and not cfg.protocol.endswith("+custom") and cfg.protocol != "custom":
        changed["protocol"] = cfg.protocol + "+custom"
    if args.oracles:
        changed["warm"] = args.oracles
    return dataclasses.replace(cfg, **changed)
