"""``forget``: pre-train Θ0 and record a structured-forgetting trajectory as a new run."""

from __future__ import annotations

import argparse

from know_core.engine.config import ForgetConfig
from know_core.engine.protocols import resolve_source
from know_core.jobs.lifecycle import record_forgetting
from know_core.store.runstore import RunStore

from ..data import available_datasets
from ..models import available_models
from . import TqdmHooks, command, runs_dir_arg
from .config_args import add_field_flags, add_protocol_args, add_set_arg, overrides
from .runs import print_run

FLAGS = ("r", "stages", "seed", "optim.batch_size", "optim.lr", "forget_lr", "pretrain.max_epochs",
         "pretrain.patience", "d0_fraction", "balanced", "device", "data_root")  # generated from the fields' metadata


@command("forget", "pre-train Θ0 and record a structured-forgetting trajectory as a new run", order=10,
         threaded=True)
def _forget_parser(ps: argparse.ArgumentParser) -> None:
    d = ForgetConfig()
    ps.add_argument("--dataset", dest="set:dataset", metavar="DATASET",
                    help=f"one of: {', '.join(available_datasets())} (default {d.dataset})")
    ps.add_argument("--model", dest="set:model", metavar="MODEL",
                    help=f"one of: {', '.join(available_models())} (default {d.model})")
    add_field_flags(ps, ForgetConfig, FLAGS)
    ps.add_argument("--fixed-pretrain", dest="set:pretrain.early_stop", action="store_false", default=None,
                    help="train exactly --pretrain-epochs (no early stop)")
    add_protocol_args(ps, ForgetConfig)
    add_set_arg(ps, "r=0.33, optim.lr=0.01, pretrain.val_fraction=0.2")
    ps.add_argument("--name", default=None, help="a readable name for the run")
    ps.add_argument("--quiet", action="store_true", help="no progress bars")
    runs_dir_arg(ps)
    ps.set_defaults(func=_forget)


def _forget(args: argparse.Namespace) -> int:
    cfg = resolve_source(ForgetConfig(), args.protocol, overrides(args))
    cfg.validate()  # the boundary: checked once, the engine trusts it from here
    store = RunStore(args.runs_dir)
    hooks = TqdmHooks(args.quiet)
    try:
        run_id = record_forgetting(cfg, store, hooks, args.name)
    finally:
        hooks.close()
    print_run(store, run_id)
    return 0
