"""KNOW's cost beside its gain, and the break-even against training on more data (pure functions over results).

The comparison (docs/cost.md says it at length):

- **KNOW's overhead** O, paid once per source network: the forgetting film, the prediction, the control film for
  ``+dc`` variants, and for the default KNOWN a share of its meta-training (the checkpoint card's collection and
  training seconds divided by the number of uses it is spread over). A predictor that loads weights trained by
  others (NiNo's released checkpoints, the official KNOWN) has no meta-training cost of ours: its row says who
  trained them (``meta_training``) instead of counting 0 s. Pre-training Θ0 is common to every option and
  not counted; nor are the warm oracles, the backtests and the fine-tunings, which check the method but are not it.
- **The alternative** ×k: the oracle, Θ0's network trained on k× the source data, at its measured cost C_k.
- **Gains** per downstream task: target accuracy minus naive's, paired by seed — g (KNOW) and g_O (the oracle).
- **Break-even** N = (O / C_k) / (g / g_O): pricing an accuracy point on one task at what the oracle pays for it
  (C_k / g_O), N is how many tasks KNOW must serve before its gains have paid for its overhead. N ≤ 1: KNOW buys a
  point more cheaply than the oracle. Its interval is Fieller's for the paired ratio g / g_O (both gains' spread).
  "No break-even" where g's 95 % interval reaches 0; "no price" where g_O's does (the oracle's cost buys nothing
  measurable, so nothing is saved).
"""

from __future__ import annotations

import math
from statistics import mean
from typing import Any

from know_core.common.ledger import phases_of
from know_core.experiment.methods import BASELINE, DC_SUFFIX, OFFICIAL, SHRINK_PREFIX
from know_core.experiment.stats import t_interval, t_quantile
from know_core.predictors import predictor_trait
from know_core.store.legacy import all_oracles_phase

NOT_PREDICTIONS = {BASELINE, "scratch", "oracle", "oracle-warm", "control"}


def meta_training_s(card: dict[str, Any] | None) -> float | None:
    """Seconds a KNOWN checkpoint's meta-training took, from its card: the collection's per-job seconds summed (what
    one worker would have taken) plus the training; the collection's wall time when per-job seconds are missing."""
    if not isinstance(card, dict):
        return None
    time_ = card.get("time") or {}
    collection = (card.get("data") or {}).get("collection") or {}
    collect = collection.get("job_seconds", time_.get("collect_s"))
    train = time_.get("train_s")
    if not isinstance(collect, (int, float)) or not isinstance(train, (int, float)):
        return None
    return float(collect) + float(train)


def meta_training_text(method: str, meta_share_s: float | None) -> str:
    """What a ledger row says about ``method``'s meta-training: counted (with the seconds), unknown, trained by
    others (the predictor's ``trained_by``), or none (a closed-form rule)."""
    base = method.removesuffix(DC_SUFFIX)
    if base == OFFICIAL:
        return "official weights, trained by their authors"
    if predictor_trait(base, "trained_by"):
        return predictor_trait(base, "trained_by")
    if predictor_trait(base, "meta_trained"):
        return f"{meta_share_s:.0f} s, in the overhead" if meta_share_s is not None else "unknown (not counted)"
    return "none (no learned weights)"


def seed_overhead(phases: dict[str, dict], method: str, meta_share_s: float | None = None) -> dict[str, Any]:
    """KNOW's overhead for ``method`` on one seed: ``parts`` (wall seconds: forgetting, prediction, control film,
    meta-training share), ``wall_s`` and ``cpu_s`` totals (``cpu_s`` None when any part lacks CPU seconds), and
    ``prediction_shared`` (True when only all methods' prediction together was recorded)."""
    pred = phases.get(f"predict:{method}")
    shared = pred is None
    if shared:
        pred = phases.get("predict")
    parts = {"forgetting": phases.get("forgetting"), "prediction": pred}
    if method.endswith(DC_SUFFIX):
        parts["control film"] = phases.get("control")
    wall: dict[str, float | None] = {k: (v or {}).get("wall_s") for k, v in parts.items()}
    cpu = [(v or {}).get("cpu_s") for v in parts.values()]
    if predictor_trait(method.removesuffix(DC_SUFFIX), "meta_trained") and meta_share_s is not None:
        wall["meta-training"] = meta_share_s
        cpu.append(None)  # the card records wall seconds only
    total = None if any(v is None for v in wall.values()) else sum(wall.values())
    cpu_total = None if any(v is None for v in cpu) else sum(cpu)
    return {"parts": wall, "wall_s": total, "cpu_s": cpu_total, "prediction_shared": shared}


def oracle_cost(phases: dict[str, dict], scale: float) -> dict[str, Any] | None:
    """The ×``scale`` oracle's seconds: its own phase when recorded (``exact``), else every oracle's together (an
    upper bound on one; runs before the ledger). None when no oracle was trained."""
    own = phases.get(f"oracle:{scale:g}")
    entry = own or all_oracles_phase(phases)
    if not entry or not entry.get("wall_s"):
        return None
    return {"wall_s": entry["wall_s"], "cpu_s": entry.get("cpu_s"), "gpu_s": entry.get("gpu_s"),
            "exact": own is not None}


def paired_gains(rows: list[dict], method: str, scale: float, metric: str = "target_acc") -> dict[int, float]:
    """Per seed: ``method`` ×``scale`` minus naive on the same seed."""
    def table(m: str, s: float) -> dict[int, float]:
        return {r["seed"]: r[metric] for r in rows if r.get("valid", True) and r["method"] == m
                and math.isclose(r["scale"], s) and r.get(metric) is not None}
    naive = table(BASELINE, 1.0)
    return {seed: v - naive[seed] for seed, v in table(method, scale).items() if seed in naive}


def mean_ci(values: list[float]) -> tuple[float, tuple[float, float] | None]:
    """Mean and Student's 95 % interval (None with fewer than two values)."""
    return mean(values), t_interval(values)


def fieller(a: list[float], b: list[float]) -> dict[str, Any]:
    """The ratio mean(a)/mean(b) of paired samples with Fieller's 95 % interval: ``(lo, hi)``, or None when the
    interval is unbounded (mean(b) not distinguishable from zero) or there are fewer than two pairs."""
    n = len(a)
    ma, mb = mean(a), mean(b)
    ratio = ma / mb if mb else None
    if n < 2 or n != len(b):
        return {"ratio": ratio, "ci95": None}
    t2 = t_quantile(n) ** 2
    vaa = sum((x - ma) ** 2 for x in a) / (n - 1) / n
    vbb = sum((y - mb) ** 2 for y in b) / (n - 1) / n
    vab = sum((x - ma) * (y - mb) for x, y in zip(a, b)) / (n - 1) / n
    qa, qb, qc = mb * mb - t2 * vbb, ma * mb - t2 * vab, ma * ma - t2 * vaa
    disc = qb * qb - qa * qc
    if qa <= 0 or disc < 0:
        return {"ratio": ratio, "ci95": None}
    root = math.sqrt(disc)
    return {"ratio": ratio, "ci95": ((qb - root) / qa, (qb + root) / qa)}


def break_even(overhead_s: float, oracle_s: float, gain: list[float], oracle_gain: list[float]) -> dict[str, Any]:
    """N = (overhead / oracle cost) / (gain / oracle gain) with its interval, and a status: ``break-even``,
    ``no break-even`` (the gain's 95 % interval reaches 0 or lies below it), ``no price`` (the oracle's gain is not
    distinguishable from zero), ``one seed`` (no interval)."""
    cost_ratio = overhead_s / oracle_s
    g, g_ci = mean_ci(gain)
    go, go_ci = mean_ci(oracle_gain)
    ratio = fieller(gain, oracle_gain)
    point = cost_ratio / ratio["ratio"] if ratio["ratio"] and ratio["ratio"] > 0 else None
    out = {"cost_ratio": cost_ratio, "gain_ratio": ratio["ratio"], "gain_ratio_ci95": ratio["ci95"], "n": point,
           "ci95": None}
    if g_ci is None or go_ci is None:
        return {**out, "status": "one seed", "why": "one seed: no interval, no evidence either way"}
    if go_ci[0] <= 0:
        return {**out, "status": "no price", "why": f"the oracle's own gain ({go:+.4f}, 95% CI [{go_ci[0]:+.4f}, "
                                                    f"{go_ci[1]:+.4f}]) is not distinguishable from zero"}
    if g_ci[0] <= 0:
        word = "below zero" if g_ci[1] < 0 else "not distinguishable from zero"
        hi = ratio["ci95"][1] if ratio["ci95"] else None
        return {**out, "ci95": (cost_ratio / hi, math.inf) if hi and hi > 0 else None, "status": "no break-even",
                "why": f"the gain ({g:+.4f}, 95% CI [{g_ci[0]:+.4f}, {g_ci[1]:+.4f}]) is {word}"}
    lo, hi = ratio["ci95"] or (None, None)
    return {**out, "ci95": (cost_ratio / hi, cost_ratio / lo) if lo else None, "status": "break-even",
            "why": f"gain {g:+.4f} is {100 * ratio['ratio']:.0f}% of the oracle's, "
                   f"at {100 * cost_ratio:.1f}% of its cost"}


def _mean_or_none(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else mean(values)


def finetune_per_task_s(results: dict[str, Any]) -> float | None:
    """Wall seconds of one downstream fine-tuning: each seed's fine-tuning phase over its fine-tuned rows."""
    per = []
    for seed_timing in _per_seed(results):
        wall = phases_of(seed_timing).get("finetune", {}).get("wall_s")
        n = sum(1 for r in results["rows"]
                if r.get("seed") == seed_timing.get("seed") and r.get("target_acc") is not None)
        if wall and n:
            per.append(wall / n)
    return mean(per) if per else None


def cost_table(results: dict[str, Any], meta_s: float | None = None, meta_uses: float = 1.0) -> dict[str, Any]:
    """The cost ledger of an experiment: per predicted method and scale, the overhead (mean over seeds, its parts),
    the ×k oracle's cost, both gains and the break-even; plus what the figures rest on (``notes``)."""
    per_seed = {t["seed"]: phases_of(t) for t in _per_seed(results)}
    seeds = sorted(per_seed)
    share = meta_s / meta_uses if meta_s is not None and meta_uses > 0 else None
    methods = sorted({r["method"] for r in results["rows"] if r["method"] not in NOT_PREDICTIONS
                      and not r["method"].startswith(SHRINK_PREFIX) and r.get("valid", True)})
    scales = sorted({r["scale"] for r in results["rows"] if r["method"] in methods})
    has_cpu = any(e.get("cpu_s") is not None for p in per_seed.values() for e in p.values())
    has_gpu = any(e.get("gpu_s") is not None for p in per_seed.values() for e in p.values())
    rows, exact = [], True
    for scale in scales:
        oracle = [oracle_cost(per_seed[s], scale) for s in seeds]
        oracle_gain = paired_gains(results["rows"], "oracle", scale)
        for method in methods:
            gain = paired_gains(results["rows"], method, scale)
            if not gain:
                continue
            over = [seed_overhead(per_seed[s], method, share) for s in seeds]
            row = {"method": method, "scale": scale, "n": len(gain),
                   "overhead_s": _mean_or_none([o["wall_s"] for o in over]),
                   "overhead_range_s": _range([o["wall_s"] for o in over]),
                   "overhead_cpu_s": _mean_or_none([o["cpu_s"] for o in over]),
                   "parts": {k: _mean_or_none([o["parts"][k] for o in over]) for k in over[0]["parts"]} if over else {},
                   "prediction_shared": any(o["prediction_shared"] for o in over),
                   "meta_training": meta_training_text(method, share),
                   "gain": mean_ci(list(gain.values())), "oracle_gain": None, "oracle_s": None, "break_even": None}
            if oracle and all(oracle) and oracle_gain:
                exact = exact and all(o["exact"] for o in oracle)
                row["oracle_s"] = mean(o["wall_s"] for o in oracle)
                row["oracle_cpu_s"] = _mean_or_none([o["cpu_s"] for o in oracle])
                row["oracle_exact"] = all(o["exact"] for o in oracle)
                row["oracle_gain"] = mean_ci(list(oracle_gain.values()))
                both = sorted(set(gain) & set(oracle_gain))
                if row["overhead_s"] is not None and both:
                    row["break_even"] = break_even(row["overhead_s"], row["oracle_s"], [gain[s] for s in both],
                                                   [oracle_gain[s] for s in both])
            rows.append(row)
    notes = _notes(has_cpu, has_gpu, exact, meta_s, meta_uses, methods)
    return {"seeds": seeds, "has_cpu": has_cpu, "has_gpu": has_gpu, "meta_s": meta_s, "meta_uses": meta_uses,
            "finetune_per_task_s": finetune_per_task_s(results), "rows": rows, "notes": notes}


def _per_seed(results: dict[str, Any]) -> list[dict[str, Any]]:
    """``timings.per_seed`` entries that name their seed (anything else in a damaged file is passed over)."""
    entries = (results.get("timings") or {}).get("per_seed")
    if not isinstance(entries, list):
        return []
    return [t for t in entries if isinstance(t, dict) and isinstance(t.get("seed"), int)]


def _range(values: list[float | None]) -> tuple[float, float] | None:
    vals = [v for v in values if v is not None]
    return (min(vals), max(vals)) if vals else None


def _notes(has_cpu: bool, has_gpu: bool, exact: bool, meta_s: float | None, uses: float,
           methods: list[str]) -> list[str]:
    notes = []
    if not has_cpu:
        notes.append("This run recorded wall seconds only (it predates the cost ledger): its CPU and GPU seconds are "
                     "not known, and every figure here is wall time on the machine that ran it.")
    elif not has_gpu:
        notes.append("No GPU seconds: the run did not use a CUDA device.")
    if not exact:
        notes.append("The run recorded the oracles' time for all scales together, not per scale: each ×k row uses "
                     "that total, an upper bound on one oracle's cost, so its break-even is a lower bound.")
    if any(predictor_trait(m.removesuffix(DC_SUFFIX), "meta_trained") for m in methods):
        if meta_s is None:
            notes.append("KNOWN's meta-training cost is unknown here (no card, or not the checkpoint this run used); "
                         "its overhead leaves it out.")
        else:
            notes.append(f"KNOWN's overhead includes its meta-training ({meta_s:.0f} s from the checkpoint card) "
                         f"spread over {uses:g} use(s).")
    if OFFICIAL in methods:
        notes.append("The official KNOWN's meta-training was the authors'; its cost is not known and not counted.")
    released = [m for m in methods if predictor_trait(m.removesuffix(DC_SUFFIX), "trained_by")]
    if released:
        names = ", ".join(dict.fromkeys(m.removesuffix(DC_SUFFIX) for m in released))
        notes.append(f"{names}: released checkpoint, trained by its authors on their own tasks (NiNo: Knyazev et "
                     "al., ICLR 2025); that training cost is theirs, not known here and not counted: the overhead "
                     "is the film and the prediction.")
    return notes


def tasks(n: float | None) -> str:
    """A break-even count to 2 significant figures (below 1: paid back within the first task), ``∞`` for no bound."""
    if n is None:
        return "-"
    if math.isinf(n):
        return "∞"
    return f"{n:,.0f}" if n >= 100 else f"{n:.2g}"


def break_even_text(be: dict[str, Any] | None) -> str:
    """``N tasks [lo, hi]``, or the status with the point estimate, for one ledger row's ``break_even``."""
    if not be:
        return "no oracle at this scale: no price"
    ci = be.get("ci95")
    interval = f" [{tasks(ci[0])}, {tasks(ci[1])}]" if ci else ""
    if be["status"] == "break-even":
        return f"{tasks(be['n'])} tasks{interval}"
    point = f" (point estimate {tasks(be['n'])}{interval})" if be.get("n") is not None else ""
    return f"{be['status']}{point}"
