"""One plain sentence per run and per page, computed from a run's loaded results, before any detail.

``run_headline`` answers the whole run (did the film forget; which predictor got nearest to the real larger-data
network, against keeping Θ0; did any initialisation beat naive fine-tuning); ``film_headline``,
``retrodiction_headline``, ``downstream_headline`` and ``backtest_headline`` answer one page each. A part a run never
measured (no oracles, one seed, a forgetting-only run) gets a sentence saying so — never an exception.
Numbers go through :mod:`.fmt`; :mod:`.verdicts` merges a report's repeated verdict lines.
"""

from __future__ import annotations

from statistics import mean
from types import SimpleNamespace
from typing import Any

from know_core.api.results import load_experiment
from know_core.common.errors import KnowError
from know_core.experiment.methods import BASELINE, SHRINK_PREFIX, base_name
from know_core.experiment.methods import label as method_label
from know_core.experiment.panels import film_panel, report_of, retrodiction_summary
from know_core.experiment.seedweights import PRED_PREFIX, PRED_SUFFIX
from know_core.store.runstore import RunStore

from .fmt import interval, num, pvalue, scale, signed

NOT_PREDICTORS = (BASELINE, "scratch", "oracle", "oracle-warm", "control")


def _name(method: str) -> str:
    return method_label(method) if base_name(method) not in ("oracle", "oracle-warm") else method


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _films(res: Any) -> list[tuple[bool, Any]]:
    """(forgot, report or None) per seed of an experiment (``trajectories``) or a forget run (``trajectory``)."""
    if hasattr(res, "trajectories"):
        return [(bool(t.forgot), t.report) for t in res.trajectories]
    traj = getattr(res, "trajectory", None)
    return [] if traj is None else [(bool(traj.forgot), traj.report)]


def film_headline(res: Any) -> str:
    """Did the forgetting film forget, with its p-value (paired test of the source test loss, Θ0 vs the last stage)."""
    films = _films(res) if res is not None else []
    if not films:
        return "This run recorded no forgetting film."
    ps = [r.p_value for _, r in films if r is not None]
    forgot = sum(f for f, _ in films)
    if len(films) == 1:
        report = films[0][1]
        p = f" ({pvalue(report.p_value)})" if report is not None else ""
        pattern = report.pattern if report is not None else ("forgets" if forgot else "no forgetting")
        return {"forgets": f"The film forgot{p}.",
                "dips and recovers": f"The film dipped and recovered{p}: not clean forgetting.",
                "learns": f"The film did not forget{p}: it kept learning, so running it backwards undoes learning."
                }.get(pattern, f"The film did not forget{p}: extrapolating it backwards has nothing to retrodict.")
    n = len(films)
    if forgot == n:
        return f"The film forgot on all {n} seeds" + (f" (p ≤ {pvalue(max(ps))[4:]})." if ps else ".")
    if forgot == 0:
        return (f"The film did not forget on any of the {n} seeds" + (f" (p ≥ {pvalue(min(ps))[4:]})" if ps else "")
                + ": extrapolating it backwards has nothing to retrodict.")
    span = f" (p from {pvalue(min(ps))[4:]} to {pvalue(max(ps))[4:]})" if ps else ""
    return f"The film forgot on {forgot} of {n} seeds{span}."


def _predictor(method: str) -> bool:
    return base_name(method) not in NOT_PREDICTORS and not method.startswith(SHRINK_PREFIX)


def _nearest(scores: dict[str, float], truth: str, control: float | None) -> str:
    closer = sorted((m for m, v in scores.items() if v < 1.0), key=scores.get)
    best = min(scores, key=scores.get)
    if closer:
        text = (f"{_and([_name(m) for m in closer])} got closer to {truth} than keeping Θ0; "
                f"{_name(best)} was nearest ({num(scores[best])}; 1 = as far as Θ0)")
    else:
        text = (f"No predictor got closer to {truth} than keeping Θ0; {_name(best)} was nearest "
                f"({num(scores[best])}; 1 = as far as Θ0)")
    if control is not None:
        text += f"; training Θ0 longer on D0 alone reached {num(control)}"
    return text + "."


def retrodiction_headline(res: Any) -> str:
    """Which predictor landed nearest to the real larger-data network at the largest scale, against keeping Θ0: the
    warm oracle (the film really continued on more data; relative error averaged over parameter groups and seeds),
    else the cold oracle (a network trained on that much data)."""
    retro = [r for r in getattr(res, "retrodiction", None) or [] if r.get("rel_error") is not None]
    summary = retrodiction_summary(retro) if retro else []
    if summary:
        top = max(e["scale"] for e in summary)
        by: dict[str, list[float]] = {}
        for e in summary:
            if e["scale"] == top and e["rel_error"] is not None:
                by.setdefault(e["method"], []).append(e["rel_error"])
        scores = {m: mean(v) for m, v in by.items() if _predictor(m)}
        control = mean(by["control"]) if by.get("control") else None
        if scores:
            return _nearest(scores, f"the real {scale(top)} network (the film continued on more data)", control)
    rows = [r for r in getattr(res, "rows", None) or []
            if r.get("valid", True) and r.get("dist_to_oracle") is not None and _predictor(r["method"])]
    if rows:
        top = max(float(r["scale"]) for r in rows)
        by = {}
        for r in rows:
            if float(r["scale"]) == top:
                by.setdefault(r["method"], []).append(float(r["dist_to_oracle"]))
        return _nearest({m: mean(v) for m, v in by.items()}, f"the real {scale(top)} network (trained on that data)",
                        None)
    if not [r for r in getattr(res, "rows", None) or [] if _predictor(r.get("method", ""))]:
        return "This run made no prediction to compare with a larger-data network."
    return ("This run has no larger-data network to compare predictions with (oracles off, or a source pool too "
            "small).")


def _entries(res: Any) -> list[dict]:
    """Summary entries of the run's headline domain: the mean over held-out domains where there are several."""
    summary = getattr(res, "summary", None) or []
    domains = list(dict.fromkeys(e.get("domain") for e in summary))
    return [e for e in summary if e.get("domain") == domains[-1]] if domains else []


def _qualified(won: list[dict], tested: list[dict]) -> str:
    """What a win over naive is worth: whether it also beat the method's own shrinkage control (Θ0 rescaled to the
    prediction's size, which knows nothing of where weights go), and how many of the comparisons, each at 95 %, would
    cross zero by chance alone."""
    shrunk = [e for e in won if (e.get("vs_shrink") or {}).get("ci95")]
    beat = [e for e in shrunk if e["vs_shrink"]["ci95"][0] > 0]
    text = ""
    if shrunk and not beat:
        who = {1: "it did", 2: "neither"}.get(len(won), "none of them")
        text = f" — but {who} {'not ' if len(won) == 1 else ''}beat its own shrinkage control"
    elif beat:
        tag = lambda e: f"{_name(e['method'])} {scale(e['scale'])}"  # noqa: E731
        text = f" — {_and([tag(e) for e in beat])} also beat {'its' if len(beat) == 1 else 'their'} shrinkage control"
    if len(tested) >= 5:
        text += (f" ({len(won)} of {len(tested)} comparisons, each at 95 %; about {0.05 * len(tested):.1f} would cross "
                 "zero by chance)")
    return text


def downstream_headline(res: Any) -> str:
    """Did any initialisation beat naive fine-tuning on the target (paired 95 % interval over seeds), with the gain of
    the real larger-data network where one was trained."""
    entries = _entries(res)
    by = {(e["method"], float(e["scale"])): e for e in entries}
    cands = [e for e in entries if e.get("vs_naive") and _predictor(e["method"])]
    if not cands:
        return "No initialisation other than Θ0 was fine-tuned on the target."
    tag = lambda e: f"{_name(e['method'])} {scale(e['scale'])}"  # noqa: E731
    best = max(cands, key=lambda e: e["vs_naive"]["mean"])
    won = [e for e in cands if e["vs_naive"].get("ci95") and e["vs_naive"]["ci95"][0] > 0]
    if won:
        top = max(won, key=lambda e: e["vs_naive"]["mean"])
        d = top["vs_naive"]
        figure = f"{signed(d['mean'])}, 95 % CI {interval(*d['ci95'])}"
        text = (f"{tag(top)} beat naive fine-tuning on the target ({figure})" if len(won) == 1 else
                f"{_and([tag(e) for e in won])} beat naive fine-tuning on the target; best {tag(top)} ({figure})")
        text += _qualified(won, [e for e in cands if e["vs_naive"].get("ci95")])
    elif any(e["vs_naive"].get("ci95") for e in cands):
        seeds = max(e["vs_naive"].get("n", 0) for e in cands)
        text = (f"No initialisation beat naive fine-tuning on the target (95 % intervals over {seeds} seeds); "
                f"best {tag(best)} ({signed(best['vs_naive']['mean'])})")
    else:
        text = (f"With one seed no initialisation can be shown to beat naive fine-tuning; best {tag(best)} "
                f"({signed(best['vs_naive']['mean'])}, no interval)")
    for name, what in (("oracle", "the real {} network"), ("oracle-warm", "the film continued on {} data")):
        refs = sorted(s for m, s in by if m == name and by[(m, s)].get("vs_naive"))
        if refs:
            text += f"; {what.format(scale(refs[-1]))} gained {signed(by[(name, refs[-1])]['vs_naive']['mean'])}"
            break
    naive, scratch = by.get((BASELINE, 1.0)), by.get(("scratch", 1.0))
    if naive and scratch and naive["mean"] <= scratch["mean"]:
        text += " — but pre-training did not beat training from scratch, so this target cannot show KNOW"
    return text + "."


def backtest_headline(res: Any) -> str:
    """Hiding Θ0 and predicting it back from the later stages: which method recovered it best (1 = keeping Θ1).
    ``res``: an experiment's results, or the rows of a backtest computed on demand (``film_backtest``)."""
    rows = res if isinstance(res, list) else getattr(res, "backtest", None) or []
    by: dict[str, list[float]] = {}
    for b in rows:
        if b.get("rel_error") is not None and not b.get("layer") and b.get("method") != BASELINE:
            by.setdefault(b["method"], []).append(float(b["rel_error"]))
    failed = sorted({b["method"] for b in rows if b.get("note")} - set(by))
    missing = f" {_and([_name(m) for m in failed])} could not be backtested (the chart says why)." if failed else ""
    if not by:
        return ("This run has no backtest (hide Θ0, predict it back)." if not failed else missing.strip())
    scores = {m: mean(v) for m, v in by.items()}
    best = min(scores, key=scores.get)
    closer = sorted((m for m, v in scores.items() if v < 1.0), key=scores.get)
    if closer:
        text = (f"Hiding Θ0 and predicting it back, {_and([_name(m) for m in closer])} beat keeping Θ1; "
                f"{_name(best)} was nearest ({num(scores[best])}; 1 = keeping Θ1).")
    else:
        text = (f"Hiding Θ0 and predicting it back, no method beat keeping Θ1; {_name(best)} was nearest "
                f"({num(scores[best])}).")
    return text + missing


def continuation_headline(scores: list[dict[str, Any]]) -> str | None:
    """The stored predictions against the warm oracle (rows of :func:`continuation_scores`) at the largest scale
    scored: which landed nearest, its relative error against keeping Θ0; None when no prediction was scored."""
    preds = [s for s in scores if s["method"] != "control" and s.get("rel_error") is not None]
    if not preds:
        return None
    top = max(s["scale"] for s in preds)
    best = min((s for s in preds if s["scale"] == top), key=lambda s: s["rel_error"])
    control = next((s["rel_error"] for s in scores if s["method"] == "control" and s["scale"] == top
                    and s.get("rel_error") is not None), None)
    drift = "" if control is None else f"; the control film (Θ0 trained further on D0 alone) got {num(control)}"
    return (f"At {scale(top)}, {_name(best['method'])} landed nearest the warm oracle (relative error "
            f"{num(best['rel_error'])}; 1 = keeping Θ0){drift}.")


def warm_headline(res: Any) -> str:
    """Where the film's real continuation on more data (the warm oracle at the largest scale, first seed) got on the
    source task, against Θ0; a sentence saying so when the run has none."""
    trajectories = getattr(res, "trajectories", None) or []
    if not trajectories:
        return "This run recorded no forgetting film."
    panel = film_panel(trajectories[0].record, float(res.r))
    if not panel["warm"]:
        return ("This run has no warm oracle (the film continued on more data): warm oracles off, or a source pool "
                "too small to hold |D0|/r images.")
    top = max(panel["warm"], key=lambda w: w["scale"])
    theta0 = panel["stages"][0]["source_acc"] if panel["stages"] else None
    return (f"The film continued on {scale(top['scale'])} data (the warm oracle) reached source accuracy "
            f"{num(top['source_acc'])}, against {num(theta0)} for Θ0.")


def forget_scaling_headline(res: Any) -> str:
    """The Scaling page's answer for a forget run: it has no downstream task, only its warm oracles (if any)."""
    return ("A forget run has no downstream task: nothing was fine-tuned on a target, so there is no accuracy to "
            "scale. " + warm_headline(res))


def run_headline(res: Any) -> str:
    """The whole run in one paragraph of plain sentences: forgetting verdict with p; nearest to the real larger-data
    network against keeping Θ0; downstream against naive — only the parts the run measured. ``res``: an
    experiment's results, a forget run, or None (a run without readable results)."""
    if res is None:
        return "This run has no results to read (it failed, was cancelled, or is still running)."
    parts = [film_headline(res)]
    if hasattr(res, "rows"):
        if getattr(res, "retrodiction", None) or any(r.get("dist_to_oracle") is not None for r in res.rows):
            parts.append(retrodiction_headline(res))
        if any(e.get("vs_naive") for e in _entries(res)):
            parts.append(downstream_headline(res))
    return " ".join(parts)


def status_headline(status: str, error: str | None = None) -> str | None:
    """The sentence for a run that did not finish (None for a finished one)."""
    reason = f": {error}" if error else "."
    return {"failed": f"This run failed{reason}", "cancelled": f"This run was cancelled{reason}",
            "running": "This run is still running.", "damaged": f"This run is damaged{reason}"}.get(status)


def stored_headline(root: Any, run_id: str) -> str:
    """The headline of a stored run, read from the run store: the sentence of an unfinished or damaged run, the film
    verdict of a forget run (from its summary, no weights read), the whole headline of a finished experiment."""
    try:
        info = RunStore(root, create=False).info(run_id)
        if info.status != "done" or info.kind == "sweep":
            return status_headline(info.status, info.error) or "A sweep: its cells are experiment runs of their own."
        if info.kind == "forget":
            summary = info.summary or {}
            forget = SimpleNamespace(trajectory=SimpleNamespace(forgot=bool(summary.get("forgot")),
                                                                report=report_of(summary)))
            run = RunStore(root, create=False).open(run_id)
            stored = [_name(f[len(PRED_PREFIX):-len(PRED_SUFFIX)]) for f in sorted(run.manifest.get("files", {}))
                      if f.startswith(PRED_PREFIX) and f.endswith(PRED_SUFFIX)]
            return film_headline(forget) + (
                f" Stored predictions: {_and(stored)}; Trajectory sets each beside the warm oracle at its scale."
                if stored else " Predict it with the Predict form (Trajectory or Runs page) or `predict --run`; "
                               "Trajectory sets each prediction beside the warm oracle at its scale.")
        if info.kind == "imported":
            cfg = info.config or {}
            return (f"A film of {cfg.get('stages', '?')} imported {cfg.get('format', '?')} checkpoints "
                    f"({cfg.get('kind', '?')}): Trajectory draws it, Compare backtests it; predictions are made with "
                    "the Predict form (or `predict --run`) and exported here.")
        return run_headline(load_experiment(root, run_id))
    except KnowError as exc:
        return f"This run cannot be read: {exc}"


__all__ = ["backtest_headline", "continuation_headline", "downstream_headline", "film_headline",
           "forget_scaling_headline", "retrodiction_headline", "run_headline", "status_headline", "stored_headline",
           "warm_headline"]
