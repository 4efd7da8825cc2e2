"""``collect`` and ``metatrain``: build KNOWN's meta-dataset, then train the project's own KNOWN from it.

The documented recipe for the shipped default (≤ 30 min on 2 CPU cores):

    python -m know_core collect --grid default --out runs/metadataset/default --workers 2
    python -m know_core metatrain --data runs/metadataset/default --out know_core/checkpoints/known_default.safetensors

The default grid mixes stage budgets (release epochs:1 with Adam carried, equal-steps steps:N with a fresh Adam,
converge) and records warm oracles and the control film where cheap (``metatrain/jobs.py``).

``collect --list`` prints the grid as JSON lines and ``collect --job ID`` runs one job: the same two halves let a
cluster scheduler fan the grid out, one task per line, into a shared folder.
"""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from know_core.common.errors import KnowError
from know_core.executors import make_executor
from know_core.metatrain.collection import collect, run_job
from know_core.metatrain.plan import GRIDS, find_job, list_jobs
from know_core.metatrain.training import Recipe, metatrain
from know_core.predictors.known import DEFAULT_CHECKPOINT

from . import checks, command, executor_args


@command("collect", "record forgetting trajectories for meta-training KNOWN (resumable)", order=40,
         threaded=True)
def _collect_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="collection folder (one .safetensors per finished job)")
    p.add_argument("--grid", default="default", help=f"job grid: {', '.join(GRIDS)} (default: default)")
    p.add_argument("--jobs", type=int, default=None, help="only the first N jobs of the grid")
    executor_args(p, workers=2)
    p.add_argument("--list", action="store_true", help="print the grid's jobs as JSON lines and exit")
    p.add_argument("--job", default=None, help="run only the job with this id (the cluster path)")
    p.set_defaults(func=_collect)


def _collect(args: argparse.Namespace) -> int:
    checks.integer("--jobs", args.jobs, 1, 10**9)
    checks.integer("--workers", args.workers, 1, 256)
    if args.list:
        jobs = list_jobs(args.grid)[:args.jobs]
        for job in jobs:
            print(job.to_json())
        return 0
    if args.out is None:
        raise KnowError("--out DIR is required (the collection folder)")
    checks.writable_path("--out", args.out, folder=True)
    if args.job is not None:
        record = run_job(find_job(args.job), args.out)
        print(json.dumps(record))
        return 0
    jobs = list_jobs(args.grid)
    if args.jobs is not None:
        if args.jobs < 1:
            raise KnowError(f"--jobs must be >= 1, got {args.jobs}")
        jobs = jobs[:args.jobs]

    executor = make_executor(args.executor, args.workers, args.ray_address)
    bar = tqdm(total=None, desc="collect", unit="job", file=sys.stderr, dynamic_ncols=True)

    def progress(done: int, total: int, record: dict) -> None:
        bar.total = total
        bar.set_postfix({"last": record["id"][:8], "status": record["status"],
                         "s": round(record.get("seconds", 0.0), 1)}, refresh=False)
        bar.update(done - bar.n)

    try:
        summary = collect(jobs, args.out, args.workers, progress, executor)
    finally:
        bar.close()
        executor.close()
    last = summary["history"][-1]
    print(f"{len(jobs)} jobs: {last['ran']} run now, {last['already_done']} already done, {last['failed']} failed "
          f"({last['seconds']:.0f} s)")
    print(f"{args.out}: {summary['trajectories']} trajectories ({summary['forgot']} forgot), "
          f"{summary['windows']:,} windows, {summary['bytes'] / 1e6:.1f} MB")
    for line in summary["broken"]:
        print(f"warning: {line}", file=sys.stderr)
    return 0


@command("metatrain", "train one KNOWN per group on a collected meta-dataset", order=41, threaded=True)
def _metatrain_parser(p: argparse.ArgumentParser) -> None:
    r = Recipe()
    p.add_argument("--data", required=True, help="collection folder made by `collect`")
    p.add_argument("--out", default=str(DEFAULT_CHECKPOINT),
                   help="checkpoint path; the card goes beside it as .json (default: the shipped default)")
    p.add_argument("--seed", type=int, default=r.seed)
    p.add_argument("--max-epochs", type=int, default=r.max_epochs)
    p.add_argument("--patience", type=int, default=r.patience, help="epochs without validation gain before stopping")
    p.add_argument("--minutes", type=float, default=r.minutes, help="wall-clock budget for training (all groups)")
    p.add_argument("--modes", default=",".join(r.modes), help="input modes to try: raw,range (chosen by validation)")
    p.add_argument("--lr", type=float, default=r.lr)
    p.add_argument("--batch-size", type=int, default=r.batch_size)
    p.add_argument("--max-rows", type=int, default=r.max_rows, help="windows kept per trajectory and position")
    p.add_argument("--val-fraction", type=float, default=r.val_fraction, help="share of trajectories for validation")
    p.add_argument("--workers", type=int, default=r.workers, help="networks trained at once, one thread each")
    p.add_argument("--sample-rows", type=int, default=r.sample_rows,
                   help="validation windows per group shipped beside the checkpoint (0: none)")
    p.add_argument("--target", default=r.target, choices=("backward", "warm", "dc"),
                   help="what each window predicts: the film's previous stage (backward, the method), the warm "
                        "oracle Θ_{-1} (warm) or the previous stage of the drift-corrected film (dc)")
    p.set_defaults(func=_metatrain)


def check_recipe(args: argparse.Namespace) -> None:
    """Every number finite and in range, the data a folder, the output writable: before any training starts."""
    checks.finite("--lr", args.lr, 0, 10, low_open=True)
    checks.finite("--minutes", args.minutes, 0, 7 * 24 * 60, low_open=True)
    checks.finite("--val-fraction", args.val_fraction, 0, 1, low_open=True)
    if args.val_fraction >= 1:
        raise KnowError(f"--val-fraction must be below 1, got {args.val_fraction:g}")
    for flag, value, low in (("--seed", args.seed, 0), ("--max-epochs", args.max_epochs, 1),
                             ("--patience", args.patience, 1), ("--batch-size", args.batch_size, 1),
                             ("--max-rows", args.max_rows, 1), ("--workers", args.workers, 1),
                             ("--sample-rows", args.sample_rows, 0)):
        checks.integer(flag, value, low, checks.MAX_SEED if flag == "--seed" else 10**9)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in ("raw", "range") for m in modes):
        raise KnowError(f"--modes must name raw and/or range, got {args.modes!r}")
    checks.readable_file("--data", args.data, folder=True)
    checks.writable_path("--out", args.out, folder=False)


def _metatrain(args: argparse.Namespace) -> int:
    check_recipe(args)
    recipe = Recipe(seed=args.seed, max_epochs=args.max_epochs, patience=args.patience, minutes=args.minutes,
                    modes=tuple(m.strip() for m in args.modes.split(",") if m.strip()), lr=args.lr,
                    batch_size=args.batch_size, max_rows=args.max_rows, val_fraction=args.val_fraction,
                    workers=args.workers, sample_rows=args.sample_rows, target=args.target)
    card = metatrain(args.data, args.out, recipe, command=" ".join(["python -m know_core"] + sys.argv[1:]),
                     log=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"wrote {args.out} and its card ({card['time']['train_s']:.0f} s)")
    for group, v in card["validation"].items():
        k, tv, ef = v["known"], v["taskvector"], v["expfit"]
        print(f"  {group:<5} {v['mode']:<6} median rel. L2 {k['median_rel_l2']:.3f} (taskvector "
              f"{tv['median_rel_l2']:.3f}, expfit {ef['median_rel_l2']:.3f}); rel. L1 {k['rel_l1']:.3f}")
    return 0
