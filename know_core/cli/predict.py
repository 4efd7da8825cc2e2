"""``predict`` and ``backtest``: extrapolate a stored trajectory with a predictor, or check one on hidden stages."""

from __future__ import annotations

import argparse
import json

from know_core.common.errors import KnowError
from know_core.engine.extrapolate import MAX_STEPS
from know_core.experiment.backtest import backtest_run, format_table
from know_core.experiment.films import open_forget_run
from know_core.experiment.predictrun import predict_run
from know_core.store.runstore import RunStore

from ..models import predicted_groups
from ..predictors import Option, available_predictors, get_predictor, predictor_entries
from . import TqdmHooks, checks, command, runs_dir_arg

_KINDS = {"float": float, "int": int, "str": str, "path": str}


def _predictor_options() -> dict[str, list[tuple[str, Option]]]:
    """Every option a registered predictor declares, by option name, with the predictors that take it."""
    out: dict[str, list[tuple[str, Option]]] = {}
    for entry in predictor_entries():
        for option in entry.options:
            out.setdefault(option.name, []).append((entry.name, option))
    return out


def _predictor_args(parser: argparse.ArgumentParser) -> None:
    """One flag per predictor option (``--lam``, ``--weights`` …), from the registry's metadata."""
    for name, owners in _predictor_options().items():
        option = owners[0][1]
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=_KINDS[option.kind], default=None,
                            help=f"{', '.join(o for o, _ in owners)} only: {option.help}")


def make_predictor(method: str, args: argparse.Namespace, strict: bool = True):
    """The predictor with the options that apply to it; with ``strict`` an option for another method is an error."""
    options = {}
    for name, owners in _predictor_options().items():
        value, flag = getattr(args, name, None), f"--{name.replace('_', '-')}"
        if value is None:
            continue
        kind = owners[0][1].kind
        if kind in ("float", "int"):
            checks.finite(flag, value)
        elif kind == "path":
            checks.readable_file(flag, value)
        if method in [o for o, _ in owners]:
            options[name] = value
        elif strict:
            raise KnowError(f"{flag} applies to the {' and '.join(o for o, _ in owners)} method only, not {method!r}")
    return get_predictor(method, **options)


def _embed_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--include-embed", action="store_true",
                        help="predict positional embeddings and class tokens (ViT) with the fc weights "
                             "(default: copied from Θ0 like normalisation layers)")


@command("predict", "predict Θ̂_{-1..-K} for a run and store them in it", order=30, threaded=True)
def _predict_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run id (see `runs list`)")
    p.add_argument("--method", required=True, help=f"one of: {', '.join(available_predictors())}")
    p.add_argument(
        "--steps", type=int, default=3, help=f"K: rolled steps, ×(1/r)^K virtual data (default 3, at most {MAX_STEPS})"
    )
    p.add_argument(
        "--reset-norm",
        action="store_true",
        help="reset normalisation layers as the official release does (default: keep Θ0's)",
    )
    _embed_arg(p)
    p.add_argument(
        "--drift-correct",
        action="store_true",
        help="predict from the film with the run's control-film drift removed; stored as '<method>+dc'",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _predictor_args(p)
    runs_dir_arg(p)
    p.set_defaults(func=_predict)


def _predict(args: argparse.Namespace) -> int:
    checks.integer("--steps", args.steps, 1, MAX_STEPS)
    predictor = make_predictor(args.method, args)
    hooks = TqdmHooks(getattr(args, "quiet", False))
    try:
        stored = predict_run(RunStore(args.runs_dir, create=False), args.run, args.method, predictor, args.steps,
                             args.reset_norm, args.include_embed, args.drift_correct, hooks)
    finally:
        hooks.close()
    print("\n".join(stored.lines()))
    return 0


@command("backtest", "hide Θ0 (and Θ1), predict it back from older stages, report the error", order=31, threaded=True)
def _backtest_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run id (see `runs list`)")
    p.add_argument(
        "--methods",
        default=",".join(available_predictors()),
        help=f"comma-separated predictors among {', '.join(available_predictors())} (default: all; one "
        "that cannot load, e.g. known without its checkpoint, is skipped with a note)",
    )
    p.add_argument("--steps", type=int, default=1, choices=[1, 2], help="stages hidden (default 1)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    _embed_arg(p)
    _predictor_args(p)
    runs_dir_arg(p)
    p.set_defaults(func=_backtest)


def _backtest(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise KnowError(f"--methods names no predictor; available: {', '.join(available_predictors())}")
    predictors, notes = {}, []
    for method in methods:
        try:
            predictors[method] = make_predictor(method, args, strict=False)
        except FileNotFoundError as exc:  # e.g. no default KNOWN checkpoint yet: say so, run the rest
            notes.append({"method": method, "steps": args.steps, "source_acc": None, "note": str(exc)})
    store = RunStore(args.runs_dir, create=False)
    _, cfg, traj = open_forget_run(store, args.run)
    traj.groups = predicted_groups(traj.groups, args.include_embed)
    result = backtest_run(cfg, traj, predictors, args.steps)
    result["accuracy"] += notes
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0
