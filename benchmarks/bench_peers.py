"""KNOWN beside its peers on one experiment: a preset with all six methods (naive, TaskVector, ExpFit, KNOWN, NiNo's
WNN+ and GNN) — downstream target accuracy against naive and against each method's norm-matched shrinkage control,
warm-oracle error and cosine (whole move and data part), the backtest, and each prediction's time.

``--preset quick`` (the default): one seed, about a minute on 2 cores; one seed gives no interval, so no claim either
way about downstream gains. ``--preset standard``: the preset's five seeds (about an hour of both cores), with 95 %
intervals over the seeds (paired, as ``report`` gives them) and every figure a mean over the seeds. The run is
``python -m know_core demo --preset P --methods … --out DIR`` unless ``--from`` names a results.json that command
already wrote; the summary goes to ``benchmarks/results/bench_peers.json`` (quick) or ``bench_peers_standard.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import RESULTS, emit

from know_core.experiment.methods import label as method_label

REPO = Path(__file__).resolve().parents[1]
METHODS = ["naive", "taskvector", "expfit", "known", "nino_mlp", "nino"]
PREDICTED = METHODS[1:]


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def downstream(results: dict) -> dict:
    """method ×scale -> target accuracy (mean over seeds), its gain vs naive and vs its shrinkage control, with the
    95 % interval over seeds where there are several; the ``+dc`` variants and the oracles too."""
    out = {}
    for s in results["summary"]:
        base = s["method"].removesuffix("+dc")
        if s.get("metric", "target_acc") != "target_acc" or s["scale"] == 1.0 and s["method"] != "scratch" \
                or base not in PREDICTED + ["oracle", "oracle-warm", "scratch"]:
            continue
        row = {"target_acc": s["mean"], "std": s.get("std"), "n": s.get("n")}
        for key in ("vs_naive", "vs_shrink"):
            diff = s.get(key)
            row[key] = None if diff is None else diff["mean"]
            if diff is not None and diff.get("ci95") and (diff.get("n") or 0) > 1:
                row[f"{key}_ci95"] = diff["ci95"]
        out[f"{s['method']} x{s['scale']:g}"] = row
    return out


def per_group(records: list[dict], keys: tuple[str, ...], methods: list[str]) -> dict:
    """method ×scale group (or method group) -> each figure's mean over seeds (group rows, not layers)."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        if r.get("layer") or "group" not in r or r["method"].removesuffix("+dc") not in methods:
            continue
        name = f"{r['method']} x{r['scale']:g} {r['group']}" if "scale" in r else f"{r['method']} {r['group']}"
        groups.setdefault(name, []).append(r)
    return {name: {k: _mean([r.get(k) for r in rows]) for k in keys} | {"seeds": len(rows)}
            for name, rows in sorted(groups.items())}


def summary(results: dict) -> dict:
    rows = [r for r in results["rows"] if r.get("valid", True) and r.get("target_acc") is not None]
    naive = _mean([r["target_acc"] for r in rows if r["method"] == "naive"])
    ledgers = [seed.get("ledger", {}) for seed in results["timings"]["per_seed"]]
    return {
        "naive_target_acc": naive, "downstream": downstream(results),
        "warm_oracle": per_group(results.get("retrodiction", []),
                                 ("rel_error", "cosine", "rel_error_data", "cosine_data"), PREDICTED + ["control"]),
        "backtest": per_group(results.get("backtest", []), ("rel_error", "cosine"), METHODS),
        "predict_s": {m: _mean([ledger.get(f"predict:{m}", {}).get("wall_s") for ledger in ledgers])
                      for m in METHODS},
        "forgot": [t.get("forgot") for t in results.get("trajectories", [])],
        "verdicts": [t.get("verdict") for t in results.get("trajectories", [])],
        "seeds": results["config"]["seeds"], "methods": results["config"]["methods"],
        "known_sha256": (results.get("known_checkpoint") or {}).get("sha256"),
    }


LABEL = {"scratch": "scratch (no pre-training)", "oracle": "oracle (trained on ×k data)",
         "oracle-warm": "warm oracle (the film continued on ×k data)", "control": "control C_k (Θ0 trained on D0)"}
GROUPS = ("conv", "fc", "bias")


def _pm(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:+.{digits}f}".replace("-", "−")


def markdown(figures: dict) -> str:
    """The README's tables from a summary: downstream gain vs naive [95 % CI] / vs the shrinkage control per scale,
    then the warm oracle at the largest scale and the backtest per group (means over the seeds)."""
    down, scales = figures["downstream"], sorted({float(k.rsplit(" x", 1)[1]) for k in figures["downstream"]})
    names = ["oracle", "oracle-warm"] + [m + dc for m in PREDICTED for dc in ("", "+dc")]
    scales = [s for s in scales if s != 1]

    def gain(row: dict | None) -> str:
        if row is None:
            return "–"
        ci = row.get("vs_naive_ci95")
        cell = _pm(row["vs_naive"]) + (f" [{_pm(ci[0])}, {_pm(ci[1])}]" if ci else "")
        return cell + ("" if row.get("vs_shrink") is None else f" / {_pm(row['vs_shrink'])}")

    scratch = down.get("scratch x1")
    lines = [f"Naive fine-tuning of Θ0: target accuracy {figures['naive_target_acc']:.4f} (mean over "
             f"{len(figures['seeds'])} seeds)" + (f"; training from scratch {gain(scratch)}" if scratch else "")
             + ". Gain vs naive [95 % CI over seeds] / vs the method's own shrinkage control:", "",
             "| method | " + " | ".join(f"×{s:g}" for s in scales) + " |", "|---|" + "---|" * len(scales)]
    for name in names:
        cells = [gain(down.get(f"{name} x{s:g}")) for s in scales]
        if any(c != "–" for c in cells):
            lines.append(f"| {LABEL.get(name) or method_label(name)} | " + " | ".join(cells) + " |")
    top = max(scales)
    warm, back = figures["warm_oracle"], figures["backtest"]
    lines += ["", f"Against the warm oracle at ×{top:g} (relative error, 1 = keeping Θ0 / cosine of the move / cosine "
              "with the part more data adds), and the backtest (hide Θ0, predict it back: 1 = keeping Θ1), per group "
              "conv · fc · bias:", "", "| method | warm oracle ×" + f"{top:g} | backtest |", "|---|---|---|"]
    for name in ["control"] + [m + dc for m in PREDICTED for dc in ("", "+dc")]:
        w = [warm.get(f"{name} x{top:g} {g}") for g in GROUPS]
        b = [back.get(f"{name} {g}") for g in GROUPS]
        if not any(w) and not any(b):
            continue
        wcell = " · ".join("–" if x is None else f"{x['rel_error']:.2f} / {_pm(x['cosine'], 2)} / "
                           f"{_pm(x['cosine_data'], 2)}" for x in w)
        bcell = " · ".join("–" if x is None or x["rel_error"] is None else f"{x['rel_error']:.3f}" for x in b)
        lines.append(f"| {LABEL.get(name) or method_label(name)} | {wcell} | {bcell if any(b) else '–'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=("quick", "standard"), default="quick")
    ap.add_argument("--from", dest="source", type=Path, help="a results.json of that run, instead of running it")
    ap.add_argument("--load", type=float, help="with --from: the 1-minute load average when that run started")
    ap.add_argument("--markdown", action="store_true",
                    help="print the README's tables from the preset's kept summary (results/bench_peers*.json); "
                         "runs nothing")
    args = ap.parse_args()
    if args.markdown:
        kept = RESULTS / ("bench_peers.json" if args.preset == "quick" else f"bench_peers_{args.preset}.json")
        print(markdown(json.loads(kept.read_text())))
        return
    command = [sys.executable, "-m", "know_core", "demo", "--preset", args.preset, "--methods", *METHODS, "--quiet"]
    load = os.getloadavg()[0] if args.source is None else args.load
    if args.source is None:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([*command, "--out", tmp], check=True, cwd=REPO)
            results = json.loads((Path(tmp) / "results.json").read_text())
    else:
        results = json.loads(args.source.read_text())
    if results["config"].get("preset") not in (None, args.preset):
        sys.exit(f"--from: that run is of the {results['config']['preset']!r} preset, not {args.preset!r}")
    figures = summary(results)
    figures.update(command=f"python -m know_core demo --preset {args.preset} --methods " + " ".join(METHODS),
                   load_at_start=None if load is None else round(load, 2), wall_s=results["timings"].get("total_s"),
                   per_seed_s=[round(sum(v for k, v in seed.items() if k.endswith("_s") and isinstance(v, float)), 1)
                               for seed in results["timings"]["per_seed"]])
    print(json.dumps(figures["downstream"], indent=1))
    emit(figures, name=None if args.preset == "quick" else f"bench_peers_{args.preset}")


if __name__ == "__main__":
    main()
