"""``demo``: the whole KNOW experiment from a preset, with progress, a summary table and ``DIR/results.json``."""

from __future__ import annotations

import argparse
import math

import torch

from know_core.api import collapse_verdicts, experiment_result, run_headline
from know_core.api.cost import cost_ledger
from know_core.cli.costtext import format_cost
from know_core.cli.sweep import print_sweep_report
from know_core.common.errors import ConfigError, KnowError
from know_core.common.threads import Adaptive
from know_core.experiment.pipeline import run_experiment
from know_core.experiment.retrodiction import retrodiction_table
from know_core.experiment.spec import ExperimentConfig, available_presets, preset, resolve_experiment
from know_core.experiment.stats import domain_label
from know_core.experiment.transfer import format_transfer, load_transfer
from know_core.jobs import launch as jobs
from know_core.jobs.lifecycle import record_experiment
from know_core.store.loaders import check_user_file, read_json
from know_core.store.runstore import RunStore
from know_core.store.schemas import check_results

from ..predictors import available_predictors
from ..predictors.keras_import import OFFICIAL_ENV, official_known_folder
from . import TqdmHooks, command, executor_args, make_executor_from
from .checks import check_demo
from .config_args import add_field_flags, add_protocol_args, add_set_arg, overrides


@command("demo", "pre-train → forget → predict ×2/×4/×8 → fine-tune on a target → evaluate", order=50,
         threaded=True)
def _demo_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="quick", help=f"one of: {', '.join(available_presets())} (default quick)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="folder for results.json (finished seeds are resumed from it)")
    where.add_argument("--runs-dir", help="record the experiment as a run in this runs directory (the dashboard's)")
    p.add_argument("--name", default=None, help="with --runs-dir: a readable name for the run")
    p.add_argument("--background", action="store_true",
                   help="with --runs-dir: run it as a background job, like the Experiments page (shown there live; "
                        "its log is RUNS/RUN_ID/.worker.log), and return at once")
    p.add_argument("--if-empty", action="store_true",
                   help="with --background: only when the runs directory has no finished run and no running "
                        "experiment (scripts/start.sh: starting twice never starts two demos)")
    p.add_argument("--methods", nargs="+", dest="set:methods", metavar="METHOD",
                   help=f"predictors among {', '.join(available_predictors())} (default: the preset's)")
    p.add_argument("--official-known", metavar="FOLDER", default=official_known_folder(),
                   help=f"folder with the official KNOWN_*.h5: adds known-official (default ${OFFICIAL_ENV})")
    p.add_argument("--device", dest="set:source.device", metavar="DEVICE", help="auto, cpu or cuda[:N]")
    p.add_argument("--data-root", dest="set:source.data_root", metavar="FOLDER",
                   help="folder with torchvision datasets (the paper preset)")
    add_field_flags(p, ExperimentConfig, ("seeds", "scales", "target_dataset", "test_domain", "target_train",
                                          "drift_correct"),
                    default=" (default: the preset's)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    executor_args(p, default="inline")
    add_protocol_args(p, ExperimentConfig, "source.", default_protocol=None)
    add_set_arg(p, "source.r=0.33, finetune.epochs=10, source.optim.lr=0.01")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    changes = overrides(args)
    if args.official_known is not None:  # the flag or $KNOW_OFFICIAL_KNOWN; --set official_known=… still wins
        changes = {"official_known": args.official_known, **changes}
    if vars(args)["set:source.warm"] is not None:  # --oracles: the real larger-data models and the warm oracles
        changes = {"oracles": vars(args)["set:source.warm"], **changes}
    cfg = resolve_experiment(preset(args.preset), args.protocol, changes)
    background = args.background or args.if_empty
    check_demo(args, cfg, preflight=not background)  # the boundary: validated once; the engine trusts it
    if background:
        return _background(args, cfg)  # jobs.launch checks the config (the same preflight)
    hooks = TqdmHooks(args.quiet)
    if args.executor == "inline":  # seeds train here: threads = the free cores (know_core.common.threads)
        hooks.progress = Adaptive(torch.get_num_threads()).chain(hooks.progress)
    executor = make_executor_from(args, hooks)  # seeds are units: in this process, or in parallel elsewhere
    try:
        if args.runs_dir:
            store = RunStore(args.runs_dir)
            run_id = record_experiment(cfg, store, hooks, args.name, executor=executor)
            out = store.root / run_id
            results = store.open(run_id).results()
        else:
            out = args.out
            results = run_experiment(cfg, out, hooks, executor)
    finally:
        hooks.close()
        executor.close()
    print(headline_of(results) + "\n")  # the answer first, then the numbers
    print(format_summary(results))
    print(f"\nresults: {out}/results.json  ({results['timings']['total_s']:.0f} s)")
    return 0


def _background(args: argparse.Namespace, cfg: ExperimentConfig) -> int:
    """``demo --background [--if-empty]``: a job like the Experiments page's (know_core.jobs); prints one line."""
    if not args.background or not args.runs_dir or args.executor != "inline":
        raise KnowError(
            "--background needs --runs-dir (the job is a run there) and the inline executor; "
            "--if-empty needs --background"
        )
    if args.if_empty:
        run_id, what = jobs.launch_if_empty(cfg, args.runs_dir, args.name)
        if run_id is None:
            print(f"{cfg.preset} demo: {what}")
            return 0
    else:
        run_id = jobs.launch(cfg, args.runs_dir, args.name)
    print(
        f"{cfg.preset} demo: running in the background as run {run_id} (watch it on the Experiments page; log: "
        f"{args.runs_dir}/{run_id}/{jobs.LOG})"
    )
    return 0


@command(
    "report",
    "print the summary of a demo's results.json or of a sweep folder (text or Markdown), its cost "
    "ledger (--cost), or the transfer report (--transfer)",
    order=51,
)
def _report_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="?", default=None, help="path to results.json, or a sweep's folder (runs/SWEEP_ID)")
    p.add_argument("--markdown", action="store_true", help="a Markdown table, e.g. for the README")
    p.add_argument(
        "--cost",
        action="store_true",
        help="the cost ledger instead: KNOW's overhead, its gain, the oracle's cost, the break-even",
    )
    p.add_argument(
        "--meta-uses",
        type=float,
        default=1.0,
        metavar="N",
        help="spread KNOWN's meta-training over N uses in the cost ledger (default 1: all of it)",
    )
    p.add_argument(
        "--transfer",
        nargs="?",
        const="",
        default=None,
        metavar="JSON",
        help="KNOWN's transfer to ViT and MLP films (default file: docs/transfer-results.json, made by "
        "benchmarks/bench_transfer.py)",
    )
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    if args.transfer is not None:
        if args.results is not None:
            raise KnowError("give either a results.json or --transfer, not both")
        print(format_transfer(load_transfer(args.transfer or None), args.markdown))
        return 0
    if args.results is None:
        raise KnowError("report needs a results.json (or --transfer)")
    if not (args.meta_uses > 0 and math.isfinite(args.meta_uses)):
        raise ConfigError(f"--meta-uses must be a positive number, not {args.meta_uses:g}")
    path = check_user_file(args.results, "results")
    if path.is_dir() and (path / "sweep.json").is_file():
        return print_sweep_report(path, args.markdown)
    if path.is_dir():
        raise KnowError(f"{args.results} is a folder; give the path of a results.json")
    try:
        results = check_results(read_json(path.parent, path.name), path.name)
        if args.cost:
            print(format_cost(cost_ledger(results, args.meta_uses)))
        else:
            print(headline_of(results) + "\n")  # the answer first, then the numbers
            print(format_markdown(results) if args.markdown else format_summary(results))
    except (KeyError, TypeError, ValueError) as exc:
        raise KnowError(f"{args.results} is not a readable results.json ({exc})") from exc
    return 0


def headline_of(results: dict) -> str:
    """The run's one-sentence answer (:func:`know_core.api.run_headline`), printed before any table."""
    return run_headline(experiment_result(results))


def _verdicts(results: dict) -> list[str]:
    """The run's verdicts with repeats merged into one line per kind, as the pages show them."""
    return collapse_verdicts(results["verdicts"])


def _acc(e: dict, markdown: bool) -> str:
    """Mean target accuracy, ``± std`` only where there are several seeds (a std of one value means nothing)."""
    if e.get("n", 0) <= 1:
        return f"{e['mean']:.4f}" if markdown else f"{e['mean']:>9.4f}{'':>7}"
    return f"{e['mean']:.4f} ± {e['std']:.4f}" if markdown else f"{e['mean']:>9.4f} ±{e['std']:.3f}"


def format_markdown(results: dict) -> str:
    """The summary as a Markdown table: mean ± std over seeds, paired difference to naive with its 95 % interval."""
    cfg = results["config"]
    dom = int(any("domain" in e for e in results["summary"]))  # a column for the held-out domain, where there is one
    spread = "mean ± std" if len(cfg["seeds"]) > 1 else "one seed"
    lines = [
        f"`{cfg['preset']}` preset: {cfg['source']['dataset']} → {cfg['target_train']} images of "
        f"{cfg['target_dataset']}, {cfg['source']['model']}, r = {cfg['source']['r']}, S = {cfg['source']['stages']}, "
        f"seeds {', '.join(map(str, cfg['seeds']))}; target test accuracy.",
        "",
        "| " + "held-out domain | " * dom + f"method | scale | target acc ({spread}) | vs naive (95 % CI) | "
        "vs its shrinkage control |",
        "|---" * (5 + dom) + "|",
    ]
    for e in results["summary"]:
        d, s = e.get("vs_naive"), e.get("vs_shrink")
        diff = (
            "" if not d else f"{d['mean']:+.4f}" + (f" [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" if d["ci95"] else "")
        )
        shrink = "" if not s else f"{s['mean']:+.4f}"
        lines.append(
            "| " + f"{domain_label(e.get('domain'))} | " * dom + f"{e['method']} | ×{e['scale']:g} | "
            f"{_acc(e, True)} | {diff} | {shrink} |"
        )
    return "\n".join(lines + ["", *(f"- {v}" for v in _verdicts(results))])


def format_summary(results: dict) -> str:
    dom = any("domain" in e for e in results["summary"])
    head = f"{'method':<22}{'scale':>6}{'target acc':>16}{'vs naive (95% CI)':>32}{'n':>4}"
    lines = [("held-out " if dom else "") + head]
    for e in results["summary"]:
        d = e.get("vs_naive")
        diff = ""
        if d:
            ci = d["ci95"]
            diff = f"{d['mean']:+.4f}" + (f" [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "")
        lines.append(
            (f"{domain_label(e.get('domain')):>8} " if dom else "")
            + f"{e['method']:<22}{'×%g' % e['scale']:>6}{_acc(e, False)}{diff:>32}{e['n']:>4}"
        )
    invalid = {(r["method"], r.get("reason")) for r in results["rows"] if not r.get("valid", True)}
    lines += [f"INVALID {m}: {reason}" for m, reason in sorted(invalid)]
    lines += ["", *format_retrodiction(results.get("retrodiction") or [])]
    lines += ["", *(f"seed {t['seed']}: {t['verdict']}" for t in results.get("trajectories", []))]
    lines += ["", *_verdicts(results)]
    return "\n".join(lines)


def format_retrodiction(rows: list[dict]) -> list[str]:
    """Each prediction against the warm oracle (the real larger-data continuation), group by group."""
    if not rows:
        return ["retrodiction: no warm oracles in this run (the source pool holds no superset of D0)"]
    fmt = lambda v: "     -" if v is None else f"{v:6.3f}"  # noqa: E731
    lines = [
        "retrodiction vs the warm oracle (rel. error: 1.0 = no better than keeping Θ0; 'data' = against the part "
        "more data adds, Θ_{-k} − C_k)",
        f"{'method':<18}{'scale':>6}{'group':>7}{'rel.err':>9}{'cosine':>8}{'data err':>10}{'data cos':>10}",
    ]
    for e in retrodiction_table(rows):
        lines.append(
            f"{e['method']:<18}{'×%g' % e['scale']:>6}{e['group']:>7}  {fmt(e['rel_error'])} "
            f"{fmt(e['cosine'])}    {fmt(e['rel_error_data'])}    {fmt(e['cosine_data'])}"
        )
    return lines
