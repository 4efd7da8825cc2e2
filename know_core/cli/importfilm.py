"""``import`` and ``export``: a film of anyone's checkpoints as a run, and its predictions back in the files' layout."""

from __future__ import annotations

import argparse

from know_core.imports.checkpoints import ORDERS
from know_core.imports.evalhook import evaluate_film
from know_core.imports.export import SIDECAR, export_prediction
from know_core.imports.film import FILM_KINDS, FORMATS, read_film, store_film
from know_core.imports.groups import format_table, read_overrides, rule_lines
from know_core.store.runstore import RunStore

from . import TqdmHooks, command, runs_dir_arg


@command("import", "import a film of PyTorch / safetensors / Hugging Face checkpoints as a run", order=12)
def _import_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="checkpoint files or folders in film order, or one folder of checkpoints (.safetensors, "
                        ".pt/.pth/.bin, Lightning .ckpt, Hugging Face save_pretrained or Trainer checkpoint-N folders)")
    p.add_argument("--kind", required=True, choices=FILM_KINDS,
                   help="forgetting: the files are Θ0 … Θ_{S−1}, most data first; training: checkpoints along "
                        "training, earliest first (stored latest first, so predictions run forward)")
    p.add_argument("--order", choices=ORDERS, default=None,
                   help="sort the checkpoints by name, file time or training step (default: as given; a folder of "
                        "checkpoints by step where each has one, else by name)")
    p.add_argument("--reverse", action="store_true", help="the checkpoints were saved the other way round")
    p.add_argument("--r", type=float, default=0.5,
                   help="data ratio between consecutive stages; labels Θ̂_{−k} as ×(1/r)^k (default 0.5)")
    p.add_argument("--groups", default=None, metavar="FILE.json",
                   help='override the parameter groups by name pattern: {"PATTERN": "GROUP"}, GROUP one of '
                        "conv, fc, bias, norm, embed, carry")
    p.add_argument("--eval", default=None, metavar="MODULE:FUNCTION",
                   help='your function taking a state dict and returning {"loss": .., "acc": ..}: run on every '
                        "snapshot in a child process, stored as the run's source loss and accuracy")
    p.add_argument("--eval-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="time limit per snapshot for --eval (default 60)")
    p.add_argument("--dry-run", action="store_true", help="read and check the film, show its groups, store nothing")
    p.add_argument("--name", default=None, help="a readable name for the run")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    runs_dir_arg(p)
    p.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    overrides = read_overrides(args.groups) if args.groups else None
    store = None if args.dry_run else RunStore(args.runs_dir)
    if store is not None:
        store.require_writable()
    hooks = TqdmHooks(args.quiet)
    try:  # values are checked while they are stored (one pass over the film), or here for a dry run or an --eval
        film = read_film(args.paths, args.kind, args.order, args.reverse, args.r, overrides, hooks,
                         check_values=store is None or bool(args.eval))
        metrics = evaluate_film(film.states, args.eval, args.eval_timeout, hooks) if args.eval else None
    finally:
        hooks.close()
    print("parameter groups (the rule, first match decides):")
    for line in rule_lines():
        print(f"  {line}")
    print(format_table(film.table()))
    first, last = film.checkpoints[0].path, film.checkpoints[-1].path
    print(f"film: {film.config.stages} {film.config.format} checkpoints, Θ0 = {first}, Θ{film.config.stages - 1} = "
          f"{last}")
    if metrics is not None:
        print(f"--eval {args.eval}: " + ", ".join(f"Θ{i} loss {m['loss']:.4g} acc {m['acc']:.4f}"
                                                  for i, m in enumerate(metrics)))
    if store is None:
        print("dry run: nothing stored")
        return 0
    hooks = TqdmHooks(args.quiet)
    try:
        run_id = store_film(store, film, args.name, overrides, metrics, args.eval, hooks)
    finally:
        hooks.close()
    print(f"stored run {run_id} (kind imported); next: predict --run {run_id} --method METHOD")
    return 0


@command("export", "write an imported run's predicted weights in the layout of its source files", order=32)
def _export_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="an imported run (see `runs list`)")
    p.add_argument("--method", required=True, help="the method whose predictions to write (as given to predict)")
    p.add_argument("--scale", required=True, help="the predicted scale, e.g. ×8 (or x8, 8)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="safetensors, pt or hf (default: the format the film was imported from)")
    p.add_argument("--out", required=True, help="a new folder for the weights and their know-export.json")
    runs_dir_arg(p)
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    store = RunStore(args.runs_dir, create=False)
    out, sidecar = export_prediction(store, args.run, args.method, args.scale, args.out, args.format)
    print(f"wrote {args.method} ×{sidecar['scale']:g} as {sidecar['format']} to {out} "
          f"({', '.join(n for n in sidecar['files'])}; {SIDECAR} says what it is)")
    return 0
