"""Scaling page: accuracy against the scaling factor ×1, ×2, ×4 … per method, with error bars over seeds; then what
KNOW costs beside what it gains (:mod:`screens._cost`)."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from know_core.api import (
    BASELINE,
    aggregate,
    base_name,
    downstream_headline,
    fmt,
    invalid_methods,
    method_colour,
    method_label,
    method_short_label,
    predicted_methods,
    protocol_line,
)
from screens._common import (
    experiment_runs,
    finished_or_welcome,
    forget_runs,
    legend_name,
    load_results,
    md,
    pick_runs,
    run_label,
    scale_axis,
    show_figure,
    sync_url,
)
from screens._cost import cost_section
from screens._domains import pick_domain
from screens._figures import legend_below, reference_line
from screens._forgetrun import scaling_view as forget_view
from screens._presentation import prose

PAGE = {"title": "Scaling", "icon": ":material/trending_up:", "order": 40}  # read by screens._routing unrun

PREDICTED = (*predicted_methods(), "oracle", "oracle-warm")  # every registered predictor but naive, the oracles
DASHES = ("solid", "dot", "dash", "longdash", "dashdot")
SCRATCH_DASHES = ("dot", "dash", "dashdot", "longdash")  # the from-scratch reference line of each run

st.title("Scaling")
headline = st.empty()  # the page's answer (did any initialisation beat naive?), above everything once runs are read
prose(
    "Each line starts at ×1, the pre-trained Θ0 itself (\"naive\"), and follows one method's predictions for "
    "×2, ×4, ×8 more source data. **Top**: accuracy on the *target* task after fine-tuning — the number KNOW wants "
    "to raise. **Bottom**: accuracy on the *source* task of the predicted weights as they are. The *oracle* line, "
    "where the source data allowed it, is the real network trained on that much more data: what a perfect "
    "predictor would reach. The *warm oracle* line is the forgetting film really continued on nested supersets of D0 "
    "(Θ₋ₖ): exactly what each prediction claims to be. Error bars are one standard deviation over seeds.")

runs = experiment_runs() + forget_runs()
finished_or_welcome(runs)
chosen = pick_runs(runs, "scaling-runs")
show_shrink = st.toggle("Show the norm-matched shrinkage controls (dashed: Θ0 scaled to each prediction's norm)",
                        value=st.query_params.get("shrink") == "1", key="scaling-shrink")
sync_url(runs=[r.id for r in chosen], shrink="1" if show_shrink else None)
if not chosen:
    st.info("Pick at least one run.")
    st.stop()
forgets = [info for info in chosen if info.kind == "forget"]
tagged = len(chosen) > 1
chosen = [info for info in chosen if info.kind == "experiment"]


def forget_sections() -> list[str]:
    """Each forget run's section (it has no downstream task: its line says so, with its warm oracles' source accuracy
    where it has them); returns their headline lines."""
    return [f"**{md(info.name) + ': ' if tagged else ''}{md(line)}**"
            for info in forgets if (line := forget_view(info)) is not None]


if not chosen:
    headline.markdown("\n\n".join(forget_sections()))
    st.stop()
domain = pick_domain([res for info in chosen if (res := load_results(info)) is not None], "scaling-domain")
answers = [f"**{md(info.name) + ': ' if tagged else ''}{md(downstream_headline(res.at_domain(domain)))}**"
           for info in chosen if (res := load_results(info)) is not None]
headline.markdown("\n\n".join(answers))


def scaling_figure(metric: str, title: str, ytitle: str) -> go.Figure:
    fig = go.Figure()
    all_scales = [1.0]
    for k, info in enumerate(chosen):
        res = load_results(info)
        if res is None:
            continue
        res = res.at_domain(domain)
        agg = {(a["method"], a["scale"]): a for a in aggregate(res.rows, metric)}
        naive = agg.get((BASELINE, 1.0))
        tag = f" · {legend_name(info)}" if len(chosen) > 1 else ""
        methods = [m for m in PREDICTED if any(key[0] == m for key in agg)]
        methods += [f"{m}+dc" for m in PREDICTED if any(key[0] == f"{m}+dc" for key in agg)]
        if show_shrink:
            methods += [f"shrink:{m}" for m in PREDICTED if any(key[0] == f"shrink:{m}" for key in agg)]
        for method in methods:
            points = sorted((s, a) for (m, s), a in agg.items() if m == method)
            if naive is not None:
                points = [(1.0, naive), *points]
            all_scales += [s for s, _ in points]
            base = base_name(method)
            # With several runs each entry also names its run: the short label keeps it on a projector's line
            name = f"{method_short_label(method)}{tag}" if tag else method_label(method)
            fig.add_trace(go.Scatter(
                x=[s for s, _ in points], y=[a["mean"] for _, a in points], name=name,
                mode="lines+markers", error_y=dict(type="data", array=[a["std"] if a["n"] > 1 else None
                                                                       for _, a in points],
                                                   visible=any(a["n"] > 1 for _, a in points)),
                line=dict(color=method_colour(base), width=3 if base == "oracle-warm" else 2,
                          dash="dash" if method.startswith("shrink:") else "dashdot" if method.endswith("+dc") else
                          DASHES[k % len(DASHES)]),
                customdata=[[a["n"], fmt.scale(s), fmt.mean_std(a["mean"], a["std"], a["n"])] for s, a in points],
                hovertemplate=f"{name}<br>%{{customdata[1]}}<br>{ytitle}: %{{customdata[2]}}"
                              "<br>seeds: %{customdata[0]}<extra></extra>"))
        scratch = agg.get(("scratch", 1.0))
        if scratch is not None and metric == "target_acc":
            reference_line(fig, scratch["mean"], f"{method_short_label('scratch')}{tag}", method_colour("scratch"),
                           dash=SCRATCH_DASHES[k % len(SCRATCH_DASHES)])  # each run's own, told apart in the legend
    # The legend under the plot: methods by label (and " · run" for several runs) beside it squeezed the plot
    fig.update_layout(title=title, xaxis=scale_axis(all_scales), yaxis_title=ytitle, legend_title="method",
                      height=430 + 22 * max(len(fig.data) - 4, 0), margin=dict(t=60))
    return legend_below(fig)


show_figure(scaling_figure("target_acc", "Target accuracy after fine-tuning, by scaling factor",
                           "target test accuracy (fraction)"), "scaling-target")
show_figure(scaling_figure("source_acc", "Source accuracy of the initial weights (before fine-tuning)",
                           "source test accuracy (fraction)"), "scaling-source")
for info in chosen:
    res = load_results(info)
    if res is None:
        continue
    st.caption(md(f"{info.name}: {protocol_line(res.config)}"))
    for method, reason in invalid_methods(res.rows).items():
        st.warning(f"{md(run_label(info))}: **{md(method_label(method))}** could not predict — {md(reason)}")
    if not any(t.forgot for t in res.trajectories):
        st.warning(f"{md(run_label(info))}: the trajectory did not forget (source accuracy did not fall), so these "
                   "extrapolations run training backwards — see the Trajectory page.")
if forgets:  # below the experiments' figures; their lines join the answer at the top
    headline.markdown("\n\n".join(answers + forget_sections()))
# The cost ledger is a second question (when would KNOW pay for itself?): folded, so the page answers its own first
with st.expander("Cost: when would KNOW pay for itself?"):
    cost_section([(run_label(info), res) for info in chosen if (res := load_results(info)) is not None])
