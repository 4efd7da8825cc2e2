"""``runs list|show|delete|resume|reindex``: what is stored, one run's stages and verdict, and a tidy store."""

from __future__ import annotations

import argparse
import json
import sys

from know_core.common.errors import KnowError, RunStoreError
from know_core.experiment.seedweights import damaged_predictions
from know_core.jobs.lifecycle import check_run, resume_run
from know_core.store.runstore import RunStore
from know_core.sweep import read_sweep, sweep_progress
from know_core.sweep.state import TABLE_PARQUET, read_state, rebuild_table, table_damage

from ..api import delete, list_runs, stored_headline
from . import TqdmHooks, command, runs_dir_arg


def print_run(store: RunStore, run_id: str) -> None:
    info = store.info(run_id)
    s = info.summary
    print(f"run {info.id}  [{info.status}]  {info.kind}  {info.name}")
    if info.kind != "sweep":
        print(f"  {stored_headline(store.root, run_id)}")  # the answer first, the details after
    if info.kind == "sweep":
        print_sweep(store, run_id)
        return
    if info.kind == "imported":
        print(f"  {info.config.get('stages', '?')} {info.config.get('format', '?')} checkpoints of "
              f"{info.config.get('model', '?')} ({info.config.get('kind', '?')} film), r={info.config.get('r', '?')}")
        return
    cfg = info.config.get("source", info.config) if isinstance(info.config.get("source"), dict) else info.config
    print(
        f"  {cfg.get('dataset', '?')} / {cfg.get('model', '?')}  r={cfg.get('r', '?')}  S={cfg.get('stages', '?')}  "
        f"seed={info.config.get('seeds', cfg.get('seed', '?'))}"
        + (f"  preset={info.config['preset']}" if "preset" in info.config else "")
    )
    if info.error:
        print(f"  error: {info.error}")
    if info.status != "done":
        return
    if info.kind == "experiment":
        for line in s.get("verdicts", []) if isinstance(s.get("verdicts"), list) else []:
            print(f"  {line}")
        return
    try:
        print("  stage  |D_s|   source acc")
        for stage, (size, acc) in enumerate(zip(s["stage_sizes"], s["source_acc"])):
            print(f"  {stage:>5}  {int(size):>6}   {float(acc):.4f}")
        print(f"  pre-training epochs: {s.get('pretrain_epochs')}   time: {float(s['timings']['total_s']):.1f} s")
        if s.get("protocol"):
            print(f"  {s['protocol']}")
        if s.get("forgot"):
            print(f"  {s['verdict']}")
        else:
            print(f"  WARNING: {s['verdict']}", file=sys.stderr)
    except (KeyError, TypeError, ValueError) as exc:
        raise RunStoreError(f"run {run_id}: damaged: index row summary: malformed ({exc})") from None


def print_sweep(store: RunStore, sweep_id: str) -> None:
    """A sweep's grid, unit counts, refused cells and its cells' runs."""
    state = read_sweep(store, sweep_id)
    counts = sweep_progress(state)
    axes = "  ".join(f"{k}={','.join(map(str, v))}" for k, v in state["spec"]["axes"]) or "(no axes)"
    print(f"  {axes}  seeds={','.join(map(str, state['spec']['seeds']))}  what={','.join(state['spec']['what'])}")
    print(
        f"  units: {counts['finished']} done, {counts['running']} running, {counts['failed']} failed, "
        f"{counts['cancelled']} cancelled, {counts['pending']} pending of {counts['total']}"
    )
    for cell in state["cells"]:
        print(
            f"  {cell['key']}  {cell['label']:<40} {cell.get('run_id') or ''}"
            + (f"  left out: {cell['error']}" if cell.get("error") else "")
        )
    if (store.root / sweep_id / "results.csv").is_file():
        print(f"  table: {store.root / sweep_id}/results.csv (report it with: report {store.root / sweep_id})")


@command("runs", "list, inspect, delete, resume and reindex stored runs", order=20)
def _runs_parser(pr: argparse.ArgumentParser) -> None:
    rsub = pr.add_subparsers(dest="runs_command", required=True)
    pl = rsub.add_parser("list", help="list runs, newest first")
    pl.add_argument("--status", choices=["running", "done", "failed", "cancelled", "damaged"])
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=_runs_list)
    pshow = rsub.add_parser("show", help="show one run (and check its files)")
    pshow.add_argument("--json", action="store_true")
    pshow.set_defaults(func=_runs_show)
    pdel = rsub.add_parser("delete", help="delete a run that is not running: its folder and its row")
    pdel.add_argument(
        "--force",
        action="store_true",
        help="also a run listed as running whose owner is on another host or whose record cannot be "
        "trusted (never one whose process lives on this host)",
    )
    pdel.set_defaults(func=_runs_delete)
    pres = rsub.add_parser("resume", help="resume a failed or cancelled experiment here (finished seeds are kept)")
    pres.add_argument("--quiet", action="store_true", help="no progress bars")
    pres.set_defaults(func=_runs_resume)
    pre = rsub.add_parser(
        "reindex",
        help="add to the index every run folder it lacks (e.g. after index.sqlite "
        "was lost) and rebuild each damaged sweep table from its cells' runs",
    )
    pre.set_defaults(func=_runs_reindex)
    for p in (pshow, pdel, pres):
        p.add_argument("id")
    for p in (pl, pshow, pdel, pres, pre):
        runs_dir_arg(p)


def _runs_list(args: argparse.Namespace) -> int:
    runs = list_runs(RunStore(args.runs_dir, create=False), status=args.status)
    if args.json:
        print(json.dumps([r.__dict__ for r in runs], indent=2))
        return 0
    if not runs:
        print(f"no runs in {args.runs_dir}")
    for r in runs:
        c = r.config.get("source") if isinstance(r.config.get("source"), dict) else r.config
        what = (
            f"{r.summary.get('cells', '?')} cells, {r.summary.get('units', '?')} units"
            if r.kind == "sweep"
            else f"forgot={r.summary.get('forgot', '-')}"
        )
        print(
            f"{r.id:<48} {r.status:<9} {str(c.get('dataset', '')):<14} {str(c.get('model', '')):<12} {what}"
            + (f"  {r.error}" if r.status == "damaged" else "")
        )
    return 0


def _runs_show(args: argparse.Namespace) -> int:
    store = RunStore(args.runs_dir, create=False)
    info = store.info(args.id)
    if args.json:
        print(json.dumps({**info.__dict__, "forgetting": (info.summary or {}).get("forgetting")}, indent=2))
    else:
        print_run(store, args.id)
    if info.status == "damaged":
        raise RunStoreError(info.error or f"run {args.id} is damaged")
    if info.status == "done":
        run = check_run(store, args.id)  # damage is reported here too, with exit status 2
        damaged = damaged_predictions(run)  # the film reads, but these stored predictions do not
        if damaged:
            raise RunStoreError("; ".join(f"run {args.id}: damaged: {name}: {why} (predict it again to replace it)"
                                          for name, why in sorted(damaged.items())))
    return 0


def _runs_delete(args: argparse.Namespace) -> int:
    delete(RunStore(args.runs_dir, create=False), args.id, force=args.force)
    print(f"deleted run {args.id}")
    return 0


def _runs_resume(args: argparse.Namespace) -> int:
    store = RunStore(args.runs_dir, create=False)
    hooks = TqdmHooks(args.quiet)
    try:
        run_id = resume_run(store, args.id, hooks)
    finally:
        hooks.close()
    print_run(store, run_id)
    return 0


def _runs_reindex(args: argparse.Namespace) -> int:
    store = RunStore(args.runs_dir, create=False)
    if not store.writable:
        raise KnowError(f"runs directory {args.runs_dir} is read-only; reindex needs to write index.sqlite")
    added = store.reindex()
    print(f"reindexed {args.runs_dir}: {added} run folder(s) added to the index")
    return _rebuild_sweep_tables(store)


def _rebuild_sweep_tables(store: RunStore) -> int:
    """Each sweep whose table is damaged (or missing from a finished one) gets it rebuilt from its cells' runs; a
    sweep whose ``sweep.json`` is damaged cannot be (said so; it stays listed as damaged)."""
    for info in store.list_runs(kind="sweep"):
        if info.status == "running":
            continue
        try:
            state = read_state(store, info.id)
        except RunStoreError as exc:
            print(f"sweep {info.id} cannot be rebuilt: {exc} (delete it with: runs delete {info.id})", file=sys.stderr)
            continue
        try:
            table_damage(store, info.id, state)
            if info.status != "done" or (store.root / info.id / TABLE_PARQUET).is_file():
                continue
        except RunStoreError as exc:
            print(f"{exc}: rebuilding it", file=sys.stderr)
        rows = rebuild_table(store, info.id)
        print(f"sweep {info.id}: table rebuilt from its cells' runs ({rows} rows)")
    return 0
