"""``forget``: pre-train Θ0 and record a structured-forgetting trajectory as a new run."""

from __future__ import annotations

import argparse

from ..config import ForgetConfig, OptimConfig, PretrainConfig
from ..data import available_datasets
from ..models import available_models
from ..store import RunStore
from . import TqdmHooks, command, runs_dir_arg
from .protocol_args import add_protocol_args, protocol_config
from .runs import print_run


@command("forget")
def _forget_parser(sub: argparse._SubParsersAction) -> None:
    d, o, p = ForgetConfig(), OptimConfig(), PretrainConfig()
    ps = sub.add_parser("forget", help="pre-train Θ0 and record a structured-forgetting trajectory as a new run")
    ps.add_argument("--dataset", default=d.dataset, help=f"one of: {', '.join(available_datasets())}")
    ps.add_argument("--model", default=d.model, help=f"one of: {', '.join(available_models())}")
    ps.add_argument("--r", type=float, default=d.r, help="sampling rate, |D_s| = |D0|·r^s, in (0, 1)")
    ps.add_argument("--stages", type=int, default=d.stages, help="S: Θ0 plus S−1 forgetting stages (>= 2)")
    add_protocol_args(ps)
    ps.add_argument("--seed", type=int, default=d.seed)
    ps.add_argument("--batch-size", type=int, default=o.batch_size, help="default: the dataset's (128 as released)")
    ps.add_argument("--lr", type=float, default=o.lr)
    ps.add_argument("--forget-lr", type=float, default=None, help="learning rate of the forgetting stages")
    ps.add_argument("--pretrain-epochs", type=int, default=p.max_epochs, help="most pre-training epochs")
    ps.add_argument("--fixed-pretrain", action="store_true", help="train exactly --pretrain-epochs (no early stop)")
    ps.add_argument("--patience", type=int, default=p.patience, help="epochs without improvement before stopping")
    ps.add_argument("--d0-fraction", type=float, default=d.d0_fraction, help="share of the source pool used as D0")
    ps.add_argument("--balanced", action="store_true", help="class-balanced nested subsets")
    ps.add_argument("--device", default=d.device, help="auto, cpu or cuda[:N]")
    ps.add_argument("--data-root", default=None, help="folder with torchvision datasets")
    ps.add_argument("--name", default=None, help="a readable name for the run")
    ps.add_argument("--quiet", action="store_true", help="no progress bars")
    runs_dir_arg(ps)
    ps.set_defaults(func=_forget)


def _forget(args: argparse.Namespace) -> int:
    from ..runs import record_forgetting

    cfg = ForgetConfig(
        dataset=args.dataset, model=args.model, r=args.r, stages=args.stages, seed=args.seed,
        d0_fraction=args.d0_fraction, balanced=args.balanced, device=args.device, data_root=args.data_root,
        optim=OptimConfig(lr=args.lr, batch_size=args.batch_size),
        pretrain=PretrainConfig(max_epochs=args.pretrain_epochs, early_stop=not args.fixed_pretrain,
                                patience=args.patience))
    cfg.validate()  # names and ranges first: the protocol reads the dataset
    cfg = protocol_config(cfg, args)
    if args.forget_lr is not None:
        cfg.forget_lr = args.forget_lr
    cfg.validate()
    store = RunStore(args.runs_dir)
    hooks = TqdmHooks(args.quiet)
    try:
        run_id = record_forgetting(cfg, store, hooks, args.name)
    finally:
        hooks.close()
    print_run(store, run_id)
    return 0
