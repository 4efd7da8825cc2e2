"""The command line: ``python -m know_core COMMAND``. User mistakes print one line and exit with status 2.

Each command is a small function over the engine; progress goes to a tqdm bar on stderr, Ctrl-C cancels cleanly
(the run is marked cancelled, nothing half-written remains).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

from .config import ForgetConfig, OptimConfig, PretrainConfig
from .data import available_datasets
from .errors import Cancelled, KnowError
from .models import available_models
from .store import DEFAULT_RUNS_DIR, RunStore
from .train import Hooks, ProgressEvent

COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {}


def command(name: str):
    """Register ``fn(subparsers)`` that adds the parser for ``name`` and sets its ``func``."""

    def wrap(fn):
        COMMANDS[name] = fn
        return fn

    return wrap


class TqdmHooks(Hooks):
    """Hooks that draw one tqdm bar per phase on stderr."""

    def __init__(self, quiet: bool = False):
        super().__init__(progress=None if quiet else self._on_progress)
        self._bar = None
        self._phase = None

    def _on_progress(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        if event.phase != self._phase:
            self.close()
            self._phase = event.phase
            self._bar = tqdm(total=event.total or None, desc=event.phase, unit="step", file=sys.stderr,
                             leave=True, dynamic_ncols=True)
        if event.metrics:
            self._bar.set_postfix({k: round(v, 4) if isinstance(v, float) else v for k, v in event.metrics.items()},
                                  refresh=False)
        self._bar.update(event.done - self._bar.n)  # tqdm throttles the redraws itself

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _runs_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", default=os.environ.get("KNOW_RUNS_DIR", DEFAULT_RUNS_DIR),
                        help="runs directory (default ./runs or $KNOW_RUNS_DIR)")


@command("forget")
def _forget_parser(sub: argparse._SubParsersAction) -> None:
    d, o, p = ForgetConfig(), OptimConfig(), PretrainConfig()
    ps = sub.add_parser("forget", help="pre-train Θ0 and record a structured-forgetting trajectory as a new run")
    ps.add_argument("--dataset", default=d.dataset, help=f"one of: {', '.join(available_datasets())}")
    ps.add_argument("--model", default=d.model, help=f"one of: {', '.join(available_models())}")
    ps.add_argument("--r", type=float, default=d.r, help="sampling rate, |D_s| = |D0|·r^s, in (0, 1)")
    ps.add_argument("--stages", type=int, default=d.stages, help="S: Θ0 plus S−1 forgetting stages (>= 2)")
    ps.add_argument("--epochs", type=int, default=d.epochs, help="epochs per forgetting stage")
    ps.add_argument("--seed", type=int, default=d.seed)
    ps.add_argument("--batch-size", type=int, default=o.batch_size, help="default: the dataset's (128 as released)")
    ps.add_argument("--lr", type=float, default=o.lr)
    ps.add_argument("--optimizer", default=o.optimizer, choices=["adam", "sgd"])
    ps.add_argument("--forget-lr", type=float, default=None, help="learning rate of the forgetting stages")
    ps.add_argument("--pretrain-epochs", type=int, default=p.max_epochs, help="most pre-training epochs")
    ps.add_argument("--fixed-pretrain", action="store_true", help="train exactly --pretrain-epochs (no early stop)")
    ps.add_argument("--patience", type=int, default=p.patience, help="epochs without validation gain before stopping")
    ps.add_argument("--d0-fraction", type=float, default=d.d0_fraction, help="share of the source pool used as D0")
    ps.add_argument("--balanced", action="store_true", help="class-balanced nested subsets")
    ps.add_argument("--fresh-optimizer", action="store_true", help="new optimiser state at each stage")
    ps.add_argument("--device", default=d.device, help="auto, cpu or cuda[:N]")
    ps.add_argument("--data-root", default=None, help="folder with torchvision datasets")
    ps.add_argument("--name", default=None, help="a readable name for the run")
    ps.add_argument("--quiet", action="store_true", help="no progress bars")
    _runs_dir(ps)
    ps.set_defaults(func=_forget)


def _forget(args: argparse.Namespace) -> int:
    from .runs import forget_run

    cfg = ForgetConfig(
        dataset=args.dataset, model=args.model, r=args.r, stages=args.stages, epochs=args.epochs, seed=args.seed,
        d0_fraction=args.d0_fraction, balanced=args.balanced, carry_optimizer=not args.fresh_optimizer,
        forget_lr=args.forget_lr, device=args.device, data_root=args.data_root,
        optim=OptimConfig(optimizer=args.optimizer, lr=args.lr, batch_size=args.batch_size),
        pretrain=PretrainConfig(max_epochs=args.pretrain_epochs, early_stop=not args.fixed_pretrain,
                                patience=args.patience))
    cfg.validate()
    store = RunStore(args.runs_dir)
    hooks = TqdmHooks(args.quiet)
    try:
        run_id = forget_run(cfg, store, hooks, args.name)
    finally:
        hooks.close()
    _print_run(store, run_id)
    return 0


def _print_run(store: RunStore, run_id: str) -> None:
    info = store.info(run_id)
    s = info.summary
    print(f"run {info.id}  [{info.status}]  {info.name}")
    cfg = info.config
    print(f"  {cfg.get('dataset')} / {cfg.get('model')}  r={cfg.get('r')}  S={cfg.get('stages')}  seed={cfg.get('seed')}")
    if info.error:
        print(f"  error: {info.error}")
    if "source_acc" in s:
        print("  stage  |D_s|   source acc")
        for stage, (size, acc) in enumerate(zip(s["stage_sizes"], s["source_acc"])):
            print(f"  {stage:>5}  {size:>6}   {acc:.4f}")
        print(f"  pre-training epochs: {s.get('pretrain_epochs')}   time: {s['timings']['total_s']:.1f} s")
        if s.get("forgot"):
            print(f"  {s['verdict']}")
        else:
            print(f"  WARNING: {s['verdict']}", file=sys.stderr)


@command("runs")
def _runs_parser(sub: argparse._SubParsersAction) -> None:
    pr = sub.add_parser("runs", help="list and inspect stored runs")
    rsub = pr.add_subparsers(dest="runs_command", required=True)
    pl = rsub.add_parser("list", help="list runs, newest first")
    pl.add_argument("--status", choices=["running", "done", "failed", "cancelled"])
    pl.add_argument("--json", action="store_true")
    _runs_dir(pl)
    pl.set_defaults(func=_runs_list)
    pshow = rsub.add_parser("show", help="show one run")
    pshow.add_argument("id")
    pshow.add_argument("--json", action="store_true")
    _runs_dir(pshow)
    pshow.set_defaults(func=_runs_show)


def _runs_list(args: argparse.Namespace) -> int:
    runs = RunStore(args.runs_dir).list_runs(status=args.status)
    if args.json:
        print(json.dumps([r.__dict__ for r in runs], indent=2))
        return 0
    if not runs:
        print(f"no runs in {args.runs_dir}")
    for r in runs:
        c = r.config
        print(f"{r.id:<48} {r.status:<9} {c.get('dataset', ''):<14} {c.get('model', ''):<12} "
              f"forgot={r.summary.get('forgot', '-')}")
    return 0


def _runs_show(args: argparse.Namespace) -> int:
    store = RunStore(args.runs_dir)
    if args.json:
        print(json.dumps(store.info(args.id).__dict__, indent=2))
        return 0
    _print_run(store, args.id)
    if store.info(args.id).status == "done":
        store.open(args.id).read_csv("metrics.csv")  # verifies the files, so damage is reported here too
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m know_core",
                                     description="KNOW Explorer: structured forgetting and weight retrodiction.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Cancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("cancelled (Ctrl-C); the run is marked cancelled and nothing half-written was kept", file=sys.stderr)
        return 130
    except KnowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
