"""``sweep``: a grid of experiment settings × seeds as units of work on an executor, into one sweep of the run store.

    python -m know_core sweep --preset quick --axis source.r=0.33,0.5,0.7 --axis source.stages=3,5,7 --seeds 0-9 \
        --what forgetting,backtest,retrodiction,downstream --executor local --runs-dir runs --name rxs

The same command again (same ``--name``, same grid) resumes an interrupted sweep; ``--resume ID`` does too. Ctrl-C
cancels (pending units dropped, running ones stopped); ``report SWEEP_FOLDER --markdown`` summarises the cells.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from know_core.common.errors import Cancelled, KnowError
from know_core.experiment.spec import PHASES, available_presets, preset, resolve_experiment
from know_core.store.loaders import Damaged
from know_core.store.runstore import RunStore
from know_core.sweep.state import read_table
from know_core.sweep.summary import markdown

from ..executors import make_executor
from ..sweep import SweepSpec, create_sweep, parse_axis, parse_seeds, read_sweep, run_sweep
from ..sweep.runner import find_sweep
from . import command, executor_args, runs_dir_arg
from .config_args import add_set_arg, overrides


@command("sweep", "run a grid of settings × seeds (resumable, cancellable) into the run store", order=60)
def _sweep_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="quick", help=f"base experiment: {', '.join(available_presets())} "
                                                     "(default quick)")
    p.add_argument("--axis", action="append", default=[], metavar="KEY=V1,V2",
                   help="a dotted experiment setting and its values, e.g. source.r=0.33,0.5,0.7; repeatable")
    p.add_argument("--seeds", default="0", help="seeds of every cell: 0-9, 0,3,7 or a mix (default 0)")
    p.add_argument("--what", default=",".join(PHASES),
                   help=f"what each seed measures, some of {','.join(PHASES)} (default all)")
    executor_args(p)
    p.add_argument("--name", default=None, help="the sweep's name; the same name and grid again resumes it")
    p.add_argument("--resume", default=None, metavar="SWEEP_ID", help="resume this sweep (its grid as recorded)")
    p.add_argument("--yes", action="store_true", help="allow more than 10,000 units")
    p.add_argument("--no-batch", dest="batch", action="store_false",
                   help="never record a cell's seeds as one stacked model (by default they are, where the model and "
                        "protocol allow: same numbers, less time)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_set_arg(p, "source.optim.lr=0.01, finetune.epochs=10")
    runs_dir_arg(p)
    p.set_defaults(func=_sweep)


def _spec(args: argparse.Namespace) -> SweepSpec:
    if args.preset not in available_presets():
        raise KnowError(f"unknown preset {args.preset!r}; available: {', '.join(available_presets())}")
    base = resolve_experiment(preset(args.preset), None, overrides(args))
    what = [w.strip() for w in args.what.split(",") if w.strip()]
    spec = SweepSpec(base, [parse_axis(a) for a in args.axis], parse_seeds(args.seeds), what)
    spec.check_size(args.yes)
    return spec


def _sweep(args: argparse.Namespace) -> int:
    store = RunStore(args.runs_dir)
    executor = make_executor(args.executor, args.workers, args.ray_address)  # an unreachable cluster: before recording
    try:
        return _run(args, store, executor)
    finally:
        executor.close()


def _run(args: argparse.Namespace, store: RunStore, executor) -> int:
    if args.resume:
        sweep_id = args.resume
        try:
            read_sweep(store, sweep_id)  # a foreign or damaged sweep is refused before anything runs
        except Damaged as exc:
            raise KnowError(f"sweep {sweep_id} cannot be resumed: {exc} (its cells' runs are kept; remove the "
                            f"sweep with: runs delete {sweep_id})") from None
        info = store.info(sweep_id)
        if info.status == "running":  # its owner lives (a dead one is reconciled to failed)
            raise KnowError(f"sweep {sweep_id} is still running in another process; cancel it first")
        if info.status == "damaged":  # sweep.json is whole, so only the table is: resuming writes it anew
            print(f"{info.error}; resuming rebuilds the table from the cells' runs", file=sys.stderr)
    else:
        spec = _spec(args)
        sweep_id = find_sweep(store, args.name) if args.name else None
        if sweep_id is not None:
            state = read_sweep(store, sweep_id)
            if state["spec"] != spec.to_dict():
                raise KnowError(f"a sweep named {args.name!r} ({sweep_id}) exists with another grid; choose another "
                                "--name")
            if store.info(sweep_id).status == "done":
                raise KnowError(f"sweep {args.name!r} ({sweep_id}) is finished; see its results.csv")
        else:
            sweep_id = create_sweep(store, spec, args.name)
        for cell in read_sweep(store, sweep_id)["cells"]:
            for note in cell["notes"]:
                print(f"cell {cell['label']}: {note}", file=sys.stderr)
            if cell.get("error"):
                print(f"left out: {cell['error']}", file=sys.stderr)
    bar = None
    if not args.quiet:
        bar = tqdm(total=None, desc="sweep", unit="unit", file=sys.stderr, dynamic_ncols=True)

    def progress(counts: dict[str, int]) -> None:
        if bar is not None:
            bar.total = counts["total"]
            bar.set_postfix(running=counts["running"], failed=counts["failed"], refresh=False)
            bar.update(counts["finished"] + counts["failed"] - bar.n)

    print(f"sweep {sweep_id} on {executor.describe()}", file=sys.stderr)
    try:
        counts = run_sweep(store, sweep_id, executor, progress, args.batch)
    except (Cancelled, KeyboardInterrupt):
        print(f"cancelled; resume with: sweep --resume {sweep_id} --runs-dir {store.root}", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    folder = store.root / sweep_id
    for how, n in Counter(c["batched"] for c in read_sweep(store, sweep_id)["cells"] if c.get("batched")).items():
        print(f"{n} cell(s) {how}", file=sys.stderr)
    print(f"sweep {sweep_id}: {counts['finished']} of {counts['total']} units done, {counts['failed']} failed")
    print(f"table: {folder}/results.parquet and {folder}/results.csv")
    if counts["failed"]:
        state = read_sweep(store, sweep_id)
        for key, unit in state["units"].items():
            if unit["status"] == "failed":
                print(f"  {key}: {unit['error']}", file=sys.stderr)
        return 1
    return 0


def print_sweep_report(folder: Path, as_markdown: bool) -> int:
    """``report SWEEP_FOLDER``: per cell, the film's verdict and each method against naive and the warm oracle."""
    store = RunStore(folder.parent, create=False)
    state = read_sweep(store, folder.name)
    table = read_table(store, folder.name, state)  # bounded, columns and dtypes checked: else one "damaged" line
    if table is None:
        raise KnowError(f"sweep {folder.name} has no results table yet (it is {store.info(folder.name).status})")
    if table.empty:
        raise KnowError(f"sweep {folder.name} has no finished cell yet")
    text = markdown(table, [k for k, _ in state["spec"]["axes"]], state["name"])
    print(text if as_markdown else text.replace("### ", "").replace("|---|---|---|---|---|---|\n", ""))
    return 0
