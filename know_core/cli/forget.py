"""``forget``: pre-train Θ0 and record a structured-forgetting trajectory as a new run."""

from __future__ import annotations

import argparse
import dataclasses

from know_core.common.errors import ConfigError
from know_core.data.resident import resident_dataset
from know_core.engine.config import ForgetConfig, with_overrides
from know_core.engine.protocols import resolve_source
from know_core.jobs.lifecycle import record_forgetting
from know_core.jobs.userfilm import data_from, model_from, record_user_forgetting, user_name
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
    ps.add_argument("--model-factory", metavar="MODULE:FUNCTION", default=None,
                    help="your own network instead of --model: a function returning a torch.nn.Module (its module "
                         "importable, e.g. from the current folder); needs --data-factory")
    ps.add_argument("--data-factory", metavar="MODULE:FUNCTION", default=None,
                    help="your own data instead of --dataset: a function returning (train_set, test_set) torch "
                         "Datasets of (input tensor, class index) items, or one training set (a fifth held out "
                         "as the test set)")
    ps.add_argument("--name", default=None, help="a readable name for the run")
    ps.add_argument("--quiet", action="store_true", help="no progress bars")
    runs_dir_arg(ps)
    ps.set_defaults(func=_forget)


def _forget(args: argparse.Namespace) -> int:
    if args.model_factory or args.data_factory:
        return _forget_user(args)
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


def _forget_user(args: argparse.Namespace) -> int:
    """``forget --model-factory M:F --data-factory M:F``: the same protocol and flags on the user's network and
    data (``jobs.userfilm``)."""
    if not (args.model_factory and args.data_factory):
        raise ConfigError("--model-factory and --data-factory go together: give both (your network and your data)")
    sets = overrides(args)
    for key, flag in (("model", "--model"), ("dataset", "--dataset")):
        if key in sets:
            raise ConfigError(f"{flag} names a registered {key}; with --model-factory/--data-factory leave it out")
    cfg = dataclasses.replace(with_overrides(ForgetConfig(), sets), model=user_name(args.model_factory),
                              dataset=user_name(args.data_factory))
    cfg.validate()  # the flags' values first: a typo costs no factory call
    store = RunStore(args.runs_dir)
    store.require_writable()
    model, (train, test) = model_from(args.model_factory), data_from(args.data_factory)
    hooks = TqdmHooks(args.quiet)
    try:
        ds = resident_dataset(cfg.dataset, train, test, hooks)
        cfg = resolve_source(cfg, args.protocol, sets, ds)  # a protocol counting epochs of D0 reads this data's D0
        cfg.validate()
        run_id = record_user_forgetting(model, ds, cfg, store, hooks, args.name)
    finally:
        hooks.close()
    print_run(store, run_id)
    return 0
