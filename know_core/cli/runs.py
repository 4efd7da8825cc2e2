"""``runs list`` / ``runs show``: what is stored, and one run's stages and verdict."""

from __future__ import annotations

import argparse
import json
import sys

from ..store import RunStore
from . import command, runs_dir_arg


def print_run(store: RunStore, run_id: str) -> None:
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
        if s.get("protocol"):
            print(f"  {s['protocol']}")
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
    runs_dir_arg(pl)
    pl.set_defaults(func=_runs_list)
    pshow = rsub.add_parser("show", help="show one run")
    pshow.add_argument("id")
    pshow.add_argument("--json", action="store_true")
    runs_dir_arg(pshow)
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
        info = store.info(args.id).__dict__
        print(json.dumps({**info, "forgetting": info["summary"].get("forgetting")}, indent=2))
        return 0
    print_run(store, args.id)
    if store.info(args.id).status == "done":
        store.open(args.id).read_csv("metrics.csv")  # verifies the files, so damage is reported here too
    return 0
