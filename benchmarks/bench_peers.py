"""KNOWN beside its peers on one experiment: the quick preset with all six methods (naive, TaskVector, ExpFit, KNOWN,
NiNo's WNN+ and GNN), one seed — downstream target accuracy against naive and against each method's norm-matched
shrinkage control, warm-oracle error and cosine (whole move and data part), the backtest, and each prediction's time.

Runs ``python -m know_core demo --preset quick --methods … --out DIR`` (about a minute on 2 cores) unless ``--from``
names a results.json that run already wrote; the summary goes to ``benchmarks/results/bench_peers.json``. One seed:
no interval, so no claim either way about downstream gains (the standard preset's five seeds would give one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import emit

REPO = Path(__file__).resolve().parents[1]
METHODS = ["naive", "taskvector", "expfit", "known", "nino_mlp", "nino"]


def summary(results: dict) -> dict:
    rows = [r for r in results["rows"] if r.get("valid", True) and r.get("target_acc") is not None]
    acc = {(r["method"], r["scale"]): r["target_acc"] for r in rows}
    naive = acc[("naive", 1.0)]
    scales = sorted({r["scale"] for r in rows if r["method"] in METHODS and r["scale"] != 1.0})
    downstream = {}
    for m in METHODS[1:]:
        for s in scales:
            if (m, s) not in acc:
                continue
            shrink = acc.get((f"shrink:{m}", s))
            downstream[f"{m} x{s:g}"] = {"target_acc": acc[(m, s)], "vs_naive": acc[(m, s)] - naive,
                                         "vs_shrink": None if shrink is None else acc[(m, s)] - shrink}
    warm = {f"{r['method']} x{r['scale']:g} {r['group']}": {"rel_error": r["rel_error"], "cosine": r["cosine"],
                                                            "rel_error_data": r.get("rel_error_data"),
                                                            "cosine_data": r.get("cosine_data")}
            for r in results.get("retrodiction", []) if r["layer"] == "" and r["method"] in METHODS + ["control"]}
    backtest = {f"{r['method']} {r['group']}": {"rel_error": r["rel_error"], "cosine": r["cosine"]}
                for r in results.get("backtest", []) if r.get("level") == "group" and r["method"] in METHODS}
    phases = results["timings"]["per_seed"][0]["ledger"]
    return {"naive_target_acc": naive, "downstream": downstream, "warm_oracle": warm, "backtest": backtest,
            "predict_s": {m: phases.get(f"predict:{m}", {}).get("wall_s") for m in METHODS},
            "seeds": results["config"]["seeds"], "methods": results["config"]["methods"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="source", type=Path, help="a results.json of that run, instead of running it")
    ap.add_argument("--load", type=float, help="with --from: the 1-minute load average when that run started")
    args = ap.parse_args()
    command = [sys.executable, "-m", "know_core", "demo", "--preset", "quick", "--methods", *METHODS, "--quiet"]
    load = os.getloadavg()[0] if args.source is None else args.load
    if args.source is None:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([*command, "--out", tmp], check=True, cwd=REPO)
            results = json.loads((Path(tmp) / "results.json").read_text())
    else:
        results = json.loads(args.source.read_text())
    figures = summary(results)
    figures.update(command="python -m know_core demo --preset quick --methods " + " ".join(METHODS),
                   load_at_start=None if load is None else round(load, 2), wall_s=results["timings"].get("total_s"))
    print(json.dumps(figures["downstream"], indent=1))
    emit(figures)


if __name__ == "__main__":
    main()
