"""The Present page's five screens for one run: the film, its PCA picture, the predictions and the warm oracle in that
same plane, and downstream accuracy. Each screen is a headline and one figure (or a note saying what the run lacks).

Numbers come from the façade (``know_core.api``: ``film_panel``, ``pca_view``, ``aggregate``, the headlines); the
film's figure is the Trajectory page's (:func:`screens._film.film_figure`). Nothing here trains or fits anything but
drawing.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from know_core.api import (
    BASELINE,
    ExperimentResult,
    SeedWeights,
    aggregate,
    downstream_headline,
    film_headline,
    film_panel,
    method_colour,
    method_label,
    method_order,
    pca_view,
    retrodiction_headline,
    warm_headline,
)
from screens._figures import reference_line, scale_axis
from screens._film import film_figure

STEPS = ("film", "pca", "predictions", "warm", "downstream")
TITLES = {"film": "The film", "pca": "The PCA picture", "predictions": "The predictions",
          "warm": "The warm oracle", "downstream": "Downstream"}
# What each screen shows, for the page's prose (left out in presentation mode).
EXPLAIN = {
    "film": "Θ0 is fine-tuned on ever smaller subsets of its data (stage s holds |D0|·r^s images): source test loss "
            "(left) and accuracy (right) along the film. The stars left of Θ0 are the warm oracles, the film "
            "really continued on more data.",
    "pca": "Every point is a whole network, projected on the two main directions (PCA) of all of this run's "
           "networks: the film runs from the most-forgotten stage to Θ0.",
    "predictions": "Each method runs the film backwards past Θ0 to guess the networks ×2, ×4 … more data would give; "
                   "same plane, same axes as the film.",
    "warm": "The warm oracles Θ₋ₖ are the film really continued on nested supersets of D0: what each prediction "
            "claims to be; the headline compares them at the largest scale by relative error "
            "‖Θ̂ − Θ₋ₖ‖ / ‖Θ0 − Θ₋ₖ‖ (1 = no better than keeping Θ0), in full weight space.",
    "downstream": "Target-task accuracy after fine-tuning from each method's predicted weights, against the scaling "
                  "factor; ×1 is Θ0 itself (naive), drawn across as the line to beat. Error bars: one standard "
                  "deviation over seeds.",
}
SYMBOLS = {"trajectory": "circle", "prediction": "diamond", "oracle": "star", "warm": "star", "control": "x"}
FILM_NAME = "film (most-forgotten stage → Θ0)"
WARM_NAME = "warm oracles Θ₋ₖ (the real continuation)"


@dataclass
class Screen:
    """One step: its headline, its figure, and (instead of a figure, or beside it) a note on what is missing."""

    headline: str
    figure: go.Figure | None = None
    note: str | None = None
    explain: str | None = None  # what the figure shows, where it differs from the step's EXPLAIN


def film_screen(res: ExperimentResult, seed: int) -> Screen:
    return Screen(film_headline(res), film_figure(film_panel(res.trajectory(seed), res.r)))


def _axis(values: list[float], title: str) -> dict:
    pad = 0.08 * ((max(values) - min(values)) or 1.0)
    return dict(title=title, range=[min(values) - pad, max(values) + pad])


def pca_figure(sw: SeedWeights, r: float, kinds: tuple[str, ...], title: str) -> go.Figure:
    """The run's networks in one PCA plane (one basis for all of them, so every step shares the plane and the axes):
    the film always, then the ``kinds`` asked for (``prediction``, ``warm``, ``oracle``), each series from Θ0."""
    points, pca = pca_view(sw, r, None, k=2)
    explained = pca.explained + [0.0] * (2 - len(pca.explained))
    film = sorted((p for p in points if p["kind"] == "trajectory"), key=lambda p: -p["stage"])
    theta0 = film[-1]
    series: list[tuple[str, str, list[dict]]] = [(FILM_NAME, "trajectory", film)]
    if "prediction" in kinds:
        methods = sorted({p["method"] for p in points if p["kind"] == "prediction"}, key=method_order)
        series += [(m, "prediction", [theta0, *sorted((p for p in points if p["kind"] == "prediction"
                                                       and p["method"] == m), key=lambda p: p["scale"])])
                   for m in methods]  # named by label where drawn (below), coloured by method
    for kind, name in (("warm", WARM_NAME), ("oracle", "oracles (cold, from scratch)")):
        extra = sorted((p for p in points if p["kind"] == kind), key=lambda p: p["scale"])
        if kind in kinds and extra:
            series.append((name, kind, [theta0, *extra]))
    fig = go.Figure()
    for name, kind, pts in series:
        colour = method_colour({"trajectory": "trajectory", "warm": "oracle-warm"}.get(kind, name if
                                                                                       kind == "prediction" else kind))
        fig.add_trace(go.Scatter(
            x=[p["pc1"] for p in pts], y=[p["pc2"] for p in pts], mode="lines+markers",
            name=method_label(name) if kind == "prediction" else name,
            line=dict(color=colour, width=4 if kind in ("trajectory", "warm") else 2,
                      dash="dot" if kind == "oracle" else "solid"),
            marker=dict(symbol=SYMBOLS[kind], size=14 if kind != "trajectory" else 11, color=colour,
                        line=dict(width=1, color="black")),
            text=[p["label"] for p in pts], hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(title=title, height=560, legend=dict(orientation="h", y=-0.24, yanchor="top"),
                      xaxis=_axis([p["pc1"] for p in points], f"PC1 ({explained[0]:.0%} of variance)"),
                      yaxis=_axis([p["pc2"] for p in points], f"PC2 ({explained[1]:.0%} of variance)"))
    return fig


def pca_screen(sw: SeedWeights, r: float) -> Screen:
    points, _ = pca_view(sw, r, None, k=2)
    stages = sum(p["kind"] == "trajectory" for p in points)
    return Screen(f"The film is a path through weight space: {stages} networks, from the most-forgotten to Θ0.",
                  pca_figure(sw, r, (), "The forgetting film in the PCA plane"))


def predictions_screen(sw: SeedWeights, r: float, forget: bool = False) -> Screen:
    """The predictions continuing the film past Θ0; ``forget``: a forget run, whose predictions are the ones stored in
    it with the Predict form or ``predict --run``."""
    if not sw.predictions or all(m == BASELINE for m in sw.predictions):
        if forget:
            return Screen("This forget run holds no prediction yet.",
                          note="Add one with the Predict form on the Trajectory page (or `predict --run`), then "
                               "come back: it is drawn here and beside the warm oracles on the next step.")
        return Screen("This run made no predictions.", note="Only Θ0 (naive) was kept: nothing to run backwards.")
    methods = sorted((m for m in sw.predictions if m != BASELINE), key=method_order)
    verb = "continues" if len(methods) == 1 else "continue"
    return Screen(f"Running the film backwards: {', '.join(method_label(m) for m in methods)} {verb} it past Θ0.",
                  pca_figure(sw, r, ("prediction",), "Predictions ×2, ×4 … in the same plane"))


def warm_screen(res: ExperimentResult, sw: SeedWeights) -> Screen:
    """The predictions beside the real larger-data networks: the warm oracles (else the cold ones), with the headline
    of the distance to them."""
    if not sw.warm and not sw.oracles:
        return Screen(retrodiction_headline(res),
                      note="This run has no warm oracle: it was recorded before warm oracles existed, with oracles "
                           "off, or from a source pool too small to hold |D0|/r images, so there is no real "
                           "continuation to compare the predictions with.")
    return Screen(retrodiction_headline(res), pca_figure(sw, res.r, ("prediction", "warm", "oracle"),
                                                         "Predictions beside the warm oracles (the film really "
                                                         "continued)" if sw.warm else
                                                         "Predictions beside the oracles (trained on more data)"))


def forget_warm_screen(res: ExperimentResult, sw: SeedWeights, nearest: str | None = None) -> Screen:
    """A forget run's warm oracles: the film really continued on more data, in the film's PCA plane, beside the
    predictions stored in the run (the Predict form, ``predict --run``) when it has any; ``nearest``: the sentence
    naming the prediction nearest the warm oracle (:func:`know_core.api.continuation_headline`)."""
    if sw.warm and any(m != BASELINE for m in sw.predictions):
        return Screen(nearest or warm_headline(res),
                      pca_figure(sw, res.r, ("prediction", "warm"), "Predictions beside the warm oracles (the film "
                                                                    "really continued)"))
    if not sw.warm:
        return Screen(warm_headline(res), note="Nothing to draw: record the film again with warm oracles "
                                               "(`forget --oracles on`, or `record_forgetting(..., warm=\"on\")`) "
                                               "from a source pool that holds |D0|/r images.")
    return Screen(warm_headline(res), pca_figure(sw, res.r, ("warm",), "The film continued on more data (the warm "
                                                                       "oracles) in the PCA plane"),
                  explain="The warm oracles Θ₋ₖ are the film really continued on nested supersets of D0 (×2, ×4 … "
                          "its data): the networks a prediction would claim to be. This forget run holds no "
                          "prediction yet (the Predict form on Trajectory adds one), so they stand alone beside the "
                          "film, in the same plane.")


def at_one_domain(res: ExperimentResult) -> ExperimentResult:
    """A held-out-domain run at the mean over its domains (or its one domain); any other run as it is."""
    return res.at_domain(res.domains[-1]) if res.domains else res


def downstream_figure(res: ExperimentResult) -> go.Figure | None:
    agg = aggregate(res.rows, "target_acc")
    naive = next((a for a in agg if a["method"] == BASELINE), None)
    methods = sorted({a["method"] for a in agg if a["method"] not in (BASELINE, "scratch")
                      and not a["method"].startswith("shrink:")}, key=method_order)
    if not methods:
        return None
    fig, scales = go.Figure(), [1.0]
    for method in methods:
        points = sorted((a for a in agg if a["method"] == method), key=lambda a: a["scale"])
        points = ([naive] if naive is not None else []) + points
        xs = [1.0 if a["method"] == BASELINE else a["scale"] for a in points]
        scales += xs
        fig.add_trace(go.Scatter(x=xs, y=[a["mean"] for a in points], name=method, mode="lines+markers",
                                 error_y=dict(type="data", array=[a["std"] or 0 for a in points], visible=True),
                                 line=dict(color=method_colour(method.removesuffix("+dc")), width=3),
                                 marker=dict(size=12)))
    if naive is not None:
        reference_line(fig, naive["mean"], "naive Θ0", method_colour(BASELINE), width=2)
    fig.update_layout(title="Target accuracy after fine-tuning, by scaling factor", xaxis=scale_axis(scales),
                      yaxis_title="target test accuracy (fraction)", height=560, legend_title="method")
    return fig


def downstream_screen(res: ExperimentResult) -> Screen:
    fig = downstream_figure(at_one_domain(res))
    if fig is None:
        return Screen(downstream_headline(res), note="No method but naive was fine-tuned in this run.")
    return Screen(downstream_headline(res), fig)


__all__ = ["EXPLAIN", "STEPS", "TITLES", "Screen", "downstream_figure", "downstream_screen", "film_screen",
           "forget_warm_screen", "pca_figure", "pca_screen", "predictions_screen", "warm_screen"]
