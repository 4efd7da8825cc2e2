"""The transfer report: KNOWN, meta-trained without any ViT film, on held-out ViT (``vit_tiny``) and MLP films —
then a KNOWN meta-trained on the same films plus a few ViT films, on the same held-out films.

Films: the ``transfer`` grid (know_core.metatrain.plan): vit_tiny and mlp on digits and mnist-5k, seeds 7000+ that no
other grid uses, each recorded under the release and the equal-steps protocol, with warm oracles. Per architecture,
per group, medians over films (all / the films that forgot) of

- ``backtest``: Θ0 hidden, ‖θ̂0 − θ0‖ / ‖θ1 − θ0‖ (keeping Θ1 = 1.0);
- ``warm``: Θ̂_{−1} from the whole film against the warm oracle Θ_{−1}, ‖Θ̂_{−1} − Θ_{−1}‖ / ‖Θ0 − Θ_{−1}‖ (keeping
  Θ0 = 1.0), with ``warm_cos`` = cos(Θ̂_{−1} − Θ0, Θ_{−1} − Θ0);

for keeping Θ (naive), TaskVector, ExpFit, the shipped default KNOWN (default grid: CNN, ResNet and MLP films) and two
KNOWNs meta-trained here with the same recipe (``metatrain`` defaults but ``--minutes``, no validation sample):

- ``known_cnn``: the default grid's first ``--base-jobs`` films (24: its digits simple_cnn and simple_cnn_narrow
  films — CNN films only, so the MLP is an unseen architecture too);
- ``known_vit``: the same films plus the ``vit`` grid's 8 digits ViT films.

They are stored as ``benchmarks/results/known_{cnn,vit}.safetensors`` and never replace the shipped default.
The ViT's ``embed`` group (positional embedding, class token) is copied from Θ0 here, as by default everywhere.

Collections go to runs/metadataset/{default,vit,transfer} (resumable; a few minutes each on 2 cores). Figures:
docs/transfer-results.json (``report --transfer``, the KNOWN page).

``--add nino_mlp nino`` scores registered predictors (NiNo's released WNN+ and GNN) on the same held-out films and
adds them to the existing figures, which are kept as measured (only the transfer grid is collected; no KNOWN is
meta-trained). A predictor that refuses an architecture (nino: no neural graph for vit_tiny) has no figures there,
and the notes say why.
"""

from __future__ import annotations

import os

import _common

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from bench_backtest import film_rows, median  # noqa: E402

from know_core.common.fsio import write_json  # noqa: E402
from know_core.engine.config import ForgetConfig  # noqa: E402
from know_core.experiment.transfer import TRANSFER_RESULTS, load_transfer, transfer_label  # noqa: E402
from know_core.metatrain.collection import collect  # noqa: E402
from know_core.metatrain.plan import list_jobs  # noqa: E402
from know_core.models import GROUPS, create_model  # noqa: E402
from know_core.predictors import get_predictor  # noqa: E402
from know_core.predictors.known import DEFAULT_CHECKPOINT, KNOWNPredictor  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
META = REPO / "runs" / "metadataset"
VARIANTS = {"known_cnn": ("default",), "known_vit": ("default", "vit")}  # name -> collections it learns from
FIGS = ("backtest", "warm", "warm_cos")


def gather(grid: str, workers: int, first: int | None = None) -> tuple[list, float]:
    t0 = time.perf_counter()
    jobs = list_jobs(grid)[:first]
    collect(jobs, META / grid, workers=workers,
            progress=lambda d, n, r: print(f"  {grid}: {d}/{n} ({r['status']})", file=sys.stderr))
    return jobs, time.perf_counter() - t0


def variant_path(name: str) -> Path:
    return _common.RESULTS / f"{name}.safetensors"


def train_variant(name: str, films: dict[str, list], workers: int, minutes: float) -> float:
    """A KNOWN meta-trained on the given films of several collections: a folder of links to them, then
    ``metatrain`` with the default recipe (time budget ``minutes``)."""
    folder = META / f"{name}-data"
    folder.mkdir(parents=True, exist_ok=True)
    for source in VARIANTS[name]:
        for job in films[source]:
            link = folder / f"{job.id}.safetensors"
            if not link.exists():
                link.symlink_to(META / source / link.name)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "know_core", "metatrain", "--data", str(folder.relative_to(REPO)), "--out",
                    str(variant_path(name).relative_to(REPO)), "--sample-rows", "0", "--workers", str(workers),
                    "--minutes", str(minutes)], check=True, cwd=REPO)  # relative paths: the card names no machine
    return time.perf_counter() - t0


def forget_seconds(dataset: str, **overrides) -> float:
    """Wall time of one ``forget --model vit_tiny`` run with the default settings (plus ``overrides``)."""
    from know_core.jobs.lifecycle import record_forgetting
    from know_core.store.runstore import RunStore

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        record_forgetting(ForgetConfig(dataset=dataset, model="vit_tiny", device="cpu", **overrides), RunStore(tmp))
        return round(time.perf_counter() - t0, 1)


def summarise(records: list, methods: list[str]) -> dict:
    """architecture -> counts and, per subset (all / forgot), method -> group -> medians."""
    table = {}
    for model in sorted({f["model"] for f, _ in records}, reverse=True):
        mine = [(f, rows) for f, rows in records if f["model"] == model]
        table[model] = {"n_runs": len(mine), "n_forgot": sum(f["forgot"] for f, _ in mine),
                        "n_warm": sum(f["warm"] for f, _ in mine),
                        "protocols": sorted({f["protocol"] for f, _ in mine}),
                        "datasets": sorted({f["dataset"] for f, _ in mine})}
        for subset in ("all", "forgot"):
            chosen = [rows for f, rows in mine if subset == "all" or f["forgot"]]
            table[model][subset] = {m: {g: {fig: median([r.get(fig) for rows in chosen for r in rows
                                                         if r["method"] == m and r["group"] == g]) for fig in FIGS}
                                        for g in GROUPS} for m in methods}
    return table


def add_methods(names: list[str], workers: int, path: Path) -> None:
    """Score the registered predictors ``names`` on the transfer grid's films and add them to the figures at
    ``path`` (every other method's figures, times and setup kept as they were measured)."""
    figures = load_transfer(path)
    jobs, collect_s = gather("transfer", workers)
    preds = {name: get_predictor(name) for name in names}
    t0 = time.perf_counter()
    records = [film_rows(META / "transfer" / f"{job.id}.safetensors", preds) for job in jobs]
    evaluate_s = time.perf_counter() - t0
    table = summarise(records, names)
    for model, block in table.items():
        for subset in ("all", "forgot"):
            figures["table"][model][subset].update(block[subset])
    for model in table:
        for m in names:
            values = [f["accuracy"][m] for f, _ in records if f["model"] == model and f["accuracy"].get(m) is not None]
            if values:
                figures["source_acc"].setdefault(model, {})[m] = round(statistics.mean(values), 4)
    figures["methods"] = [m for m in figures["methods"] if m not in names] + names
    stamp = time.strftime("%Y-%m-%d %H:%M")
    figures["times"].update({"collect_transfer_again_s": round(collect_s, 1), "evaluate_added_s": round(evaluate_s, 1)})
    figures["setup"].append(f"{', '.join(transfer_label(m) for m in names)} ({', '.join(names)}): released "
                            f"checkpoints, scored on the same films on {stamp} "
                            f"(python benchmarks/bench_transfer.py --add {' '.join(names)})")
    for model in table:
        for m in names:
            reasons = [f["left_out"][m] for f, _ in records if f["model"] == model and m in f["left_out"]]
            if reasons:
                figures["notes"].append(f"{model}: {m} left out of {len(reasons)} film(s): {reasons[0]}")
    for model, block in table.items():
        for g in GROUPS:
            if figures["table"][model]["all"]["naive"][g]["backtest"] is None:
                continue
            cells = [f"{transfer_label(m)} {_cell(block['all'][m][g]['backtest'])} | "
                     f"{_cell(block['all'][m][g]['warm'])}" for m in names]
            figures["notes"].append(f"{model} {g}, all films, backtest | warm oracle (keeping Θ = 1.000): "
                                    + ", ".join(cells))
    write_json(path, figures)
    from know_core.experiment.transfer import format_transfer

    print(format_transfer(load_transfer(path)))
    print(f"figures: {path}; evaluated in {evaluate_s:.1f} s")


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=1, help="collection and meta-training processes (default 1)")
    ap.add_argument("--retrain", action="store_true", help="meta-train the variants again even if they exist")
    ap.add_argument("--base-jobs", type=int, default=24, help="films of the default grid the variants learn from "
                                                               "(default 24: its digits CNN films)")
    ap.add_argument("--minutes", type=float, default=4.0, help="meta-training budget per variant (default 4)")
    ap.add_argument("--fashion", action="store_true", help="also time one Fashion-MNIST forgetting run of vit_tiny")
    ap.add_argument("--json", default=str(TRANSFER_RESULTS), help="where the figures go")
    ap.add_argument("--add", nargs="+", metavar="PREDICTOR", default=None,
                    help="only score these registered predictors and add them to the existing figures")
    args = ap.parse_args()
    if args.add:
        add_methods(args.add, args.workers, Path(args.json))
        return
    times = {"vit_digits_forget_s": forget_seconds("digits")}
    if args.fashion:
        times["vit_fashion_forget_s"] = forget_seconds("fashion-mnist", d0_fraction=0.125)
    jobs, times["collect_transfer_s"] = gather("transfer", args.workers)
    films = {}
    films["vit"], times["collect_vit_s"] = gather("vit", args.workers)
    films["default"], times["collect_default_s"] = gather("default", args.workers, args.base_jobs)
    for name in VARIANTS:
        if args.retrain or not variant_path(name).is_file():
            times[f"metatrain_{name}_s"] = train_variant(name, films, args.workers, args.minutes)
    preds = {"naive": get_predictor("naive"), "taskvector": get_predictor("taskvector"),
             "expfit": get_predictor("expfit"), "known_default": KNOWNPredictor(DEFAULT_CHECKPOINT),
             **{name: KNOWNPredictor(variant_path(name)) for name in VARIANTS}}
    methods = list(preds)
    t0 = time.perf_counter()
    records = [film_rows(META / "transfer" / f"{job.id}.safetensors", preds) for job in jobs]
    times["evaluate_s"] = time.perf_counter() - t0
    table = summarise(records, methods)
    acc = {model: {m: round(statistics.mean(v), 4) for m in methods + ["true Θ0", "keep Θ1"]
                   if (v := [f["accuracy"][m] for f, _ in records if f["model"] == model
                             and f["accuracy"].get(m) is not None])} for model in table}
    counts = ", ".join(f"{m}: {t['n_runs']}" for m, t in table.items())
    vit_params = sum(p.numel() for p in create_model("vit_tiny", (1, 8, 8), 10).parameters())
    figures = {
        "measured": time.strftime("%Y-%m-%d %H:%M"), "command": "python benchmarks/bench_transfer.py",
        "setup": [f"held-out films: grid 'transfer', {len(records)} films ({counts}) "
                  "on digits and mnist-5k, release and equal-steps protocols, warm oracles Θ₋₁",
                  "KNOWN (shipped default): the shipped checkpoint, meta-trained on the default grid (simple_cnn, "
                  "simple_cnn_narrow, small_resnet and mlp films on digits, synthetic and Fashion-MNIST; no ViT)",
                  f"KNOWN (CNN films): meta-trained here on the default grid's first {args.base_jobs} films "
                  f"({', '.join(sorted({j.config['model'] + ' on ' + j.config['dataset'] for j in films['default']}))})"
                  f", default recipe with a {args.minutes:g}-minute budget",
                  f"KNOWN (CNN + ViT films): the same {args.base_jobs} films plus the 'vit' grid's {len(films['vit'])} "
                  "digits vit_tiny films, same recipe",
                  f"vit_tiny parameters on 8×8 digits: {vit_params:,}; the embed group "
                  "(positional embedding, class token) is copied from Θ0"],
        "methods": methods, "table": table, "source_acc": acc,
        "times": {k: round(v, 1) for k, v in times.items()}, "notes": []}
    for model, block in table.items():
        for g in GROUPS:
            fig = {m: {k: "-" if v is None else f"{v:.3f}" for k, v in block["all"][m][g].items()} for m in methods}
            if block["all"]["naive"][g]["backtest"] is not None:
                figures["notes"].append(
                    f"{model} {g}, all films, backtest | warm oracle (keeping Θ = 1.000): " + ", ".join(
                        f"{transfer_label(m)} {fig[m]['backtest']} | {fig[m]['warm']}" for m in methods
                        if m != "naive"))
    write_json(Path(args.json), figures)
    from know_core.experiment.transfer import format_transfer, load_transfer

    print(format_transfer(load_transfer(args.json)))
    print(f"figures: {args.json}; times: {figures['times']}")


if __name__ == "__main__":
    main()
