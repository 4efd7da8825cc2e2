"""Statistics over seeds: mean ± std per method and scale, paired differences with 95 % intervals, plain verdicts.

Paired differences compare two initialisations on the *same* seed (same Θ0, same target subset), which removes the
seed-to-seed spread that would otherwise swamp a one-point effect; the interval is Student's t over seeds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from statistics import mean, stdev

from scipy.stats import t

from know_core.experiment.methods import BASELINE


def t_quantile(n: int) -> float:
    """Student's t quantile of a two-sided 95 % interval from ``n`` values (n − 1 degrees of freedom)."""
    return float(t.ppf(0.975, n - 1))


def t_interval(values: list[float]) -> tuple[float, float] | None:
    """95 % confidence interval of the mean (Student's t); None with fewer than two values."""
    if len(values) < 2:
        return None
    half = t_quantile(len(values)) * stdev(values) / math.sqrt(len(values))
    return mean(values) - half, mean(values) + half


def _by_key(rows: list[dict], metric: str) -> dict[tuple[str, float], dict[int, float]]:
    table: dict[tuple[str, float], dict[int, float]] = defaultdict(dict)
    for r in rows:
        if r.get("valid", True) and r.get(metric) is not None:
            table[(r["method"], r["scale"])][r["seed"]] = r[metric]
    return table


def domains_of(rows: list[dict]) -> list:
    """The held-out domains the rows were evaluated on, in order of appearance; [None] for a target without domains."""
    return list(dict.fromkeys(r.get("domain") for r in rows)) or [None]


MEAN = "mean"  # the pseudo-domain of the average over every held-out domain (DomainBed's headline figure)


def domain_label(domain: int | str | None) -> str:
    """``75°``, ``mean`` (over the held-out domains), or "" for a target without domains."""
    return "" if domain is None else MEAN if domain == MEAN else f"{domain}°"


def domain_prefix(domain: int | str | None) -> str:
    """How a verdict about one held-out domain (or their mean) begins ("" for a target without domains)."""
    if domain is None:
        return ""
    return "Mean over the held-out domains: " if domain == MEAN else f"Held-out domain {domain}°: "


def domain_mean_rows(rows: list[dict], metric: str = "target_acc") -> list[dict]:
    """Per method, scale and seed, ``metric`` averaged over every held-out domain, as rows of the domain ``mean``
    (the other fields, which do not depend on the target, from the first domain's row); [] with fewer than two."""
    domains = [d for d in domains_of(rows) if d is not None]
    if len(domains) < 2:
        return []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("domain") in domains and r.get("valid", True) and r.get(metric) is not None:
            groups[(r["method"], r["scale"], r["seed"])].append(r)
    return [{**part[0], "domain": MEAN, metric: mean(r[metric] for r in part)}
            for part in groups.values() if len(part) == len(domains)]


def summarise_rows(rows: list[dict], metric: str = "target_acc") -> list[dict]:
    """One entry per (method, scale) — and held-out domain, for a target with domains (the entry then says its
    ``domain``, the last ones the ``mean`` over the domains): mean, std, n, and paired differences to naive and to
    the shrinkage control."""
    out = []
    for domain in domains_of(rows):
        part = _summarise([r for r in rows if r.get("domain") == domain], metric)
        out += part if domain is None else [{**e, "domain": domain} for e in part]
    averaged = domain_mean_rows(rows, metric)
    return out + [{**e, "domain": MEAN} for e in _summarise(averaged, metric)] if averaged else out


def _summarise(rows: list[dict], metric: str) -> list[dict]:
    table = _by_key(rows, metric)
    naive = table.get((BASELINE, 1), {})
    out = []
    for (method, scale), by_seed in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        values = list(by_seed.values())
        entry = {"method": method, "scale": scale, "metric": metric, "n": len(values), "mean": mean(values),
                 "std": stdev(values) if len(values) > 1 else 0.0}
        for name, ref in (("vs_naive", naive), ("vs_shrink", table.get((f"shrink:{method}", scale), {}))):
            if method == BASELINE or (method.startswith("shrink:") and name == "vs_shrink") or not ref:
                continue
            diffs = [by_seed[s] - ref[s] for s in by_seed if s in ref]
            if diffs:
                entry[name] = {"mean": mean(diffs), "ci95": t_interval(diffs), "n": len(diffs)}
        out.append(entry)
    return out


def verdicts(summary: list[dict], forgot: list[bool]) -> list[str]:
    """Plain sentences on what the numbers say, including when the method does not work; with held-out domains,
    one set per domain, each sentence starting with its domain."""
    lines = []
    if forgot and not all(forgot):
        lines.append(f"The film showed NO significant forgetting on {forgot.count(False)} of {len(forgot)} seeds "
                     "(source test loss, paired test p ≥ 0.05): on those, extrapolating backwards has little or "
                     "nothing to retrodict.")
    for domain in domains_of(summary):
        lines += [domain_prefix(domain) + line for line in _verdicts([e for e in summary if e.get("domain") == domain])]
    return lines


def _verdicts(summary: list[dict]) -> list[str]:
    lines = []
    by = {(e["method"], e["scale"]): e for e in summary}
    naive, scratch = by.get((BASELINE, 1)), by.get(("scratch", 1))
    if naive and scratch and naive["mean"] <= scratch["mean"]:
        lines.append(f"Pre-training does not beat training from scratch on the target "
                     f"(naive {naive['mean']:.4f} vs scratch {scratch['mean']:.4f}): this target cannot show KNOW.")
    for e in summary:
        diff = e.get("vs_naive")
        if not diff or e["method"] in ("oracle", "scratch") or e["method"].startswith("shrink:"):
            continue
        ci = diff["ci95"]
        if ci is None:
            word = "vs"
        elif ci[0] > 0:
            word = "beats"
        elif ci[1] < 0:
            word = "is WORSE than"
        else:
            word = "does not beat" if diff["mean"] <= 0 else "is not distinguishable from"
        text = f"{e['method']} ×{e['scale']:g} {word} naive ({diff['mean']:+.4f}"
        text += f", 95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}])" if ci else "; one seed: no interval, no evidence either way)"
        shrink = e.get("vs_shrink")
        if shrink:
            text += f"; vs its shrinkage control {shrink['mean']:+.4f}"
        lines.append(text + ".")
    return lines
