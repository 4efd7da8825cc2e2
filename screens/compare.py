"""Compare page: each predictor beside its norm-matched shrinkage control — backtests, oracle distances, accuracy.

It opens with its answer (which predictor got nearest to the real larger-data network, against keeping Θ0), then
one tab per figure so the page stays about one screen tall."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from know_core.api import (
    BASELINE,
    OFFICIAL,
    backtest_headline,
    collapse_verdicts,
    invalid_methods,
    method_label,
    protocol_line,
)
from screens._common import (
    experiment_runs,
    finished_or_welcome,
    forget_runs,
    load_results,
    md,
    pick_runs,
    run_label,
    show_figure,
    sync_url,
)
from screens._compare_figs import (
    backtest_figure,
    layer_backtest_bars,
    numbers_table,
    oracle_figure,
    paired_bars,
    scored_backtest_rows,
)
from screens._domains import pick_domain
from screens._figures import legend_below
from screens._forgetrun import compare_view as forget_view
from screens._imported import compare_view as imported_view
from screens._imported import imported_runs
from screens._presentation import prose
from screens._retrodiction import retrodiction_headlines, retrodiction_section

PAGE = {"title": "Compare", "icon": ":material/compare_arrows:", "order": 30}  # read by screens._routing unrun

st.title("Compare")
headline = st.empty()  # the page's answer, above everything else once the runs are read
prose(
    "**TaskVector** continues the last step of the trajectory, **ExpFit** fits an exponential to each weight, "
    "**KNOWN** is the learned hyper-model. Each is shown beside its *shrinkage control*: Θ0 simply scaled to the "
    "prediction's size — if the control does as well, the predictor's gain came from shrinking the weights, not from "
    "knowing where they go. The backtest hides Θ0 and predicts it back from the other stages: an error of 1.0 is no "
    "better than keeping Θ1, below 1 is a real recovery.")

runs = experiment_runs() + forget_runs() + imported_runs()
finished_or_welcome(runs)
chosen = pick_runs(runs, "compare-runs")
sync_url(runs=[r.id for r in chosen])
if not chosen:
    st.info("Pick at least one run.")
    st.stop()
imported = [info for info in chosen if info.kind == "imported"]
forgets = [info for info in chosen if info.kind == "forget"]
chosen = [info for info in chosen if info.kind == "experiment"]
# An imported film (the user's own checkpoints) or a forget run: a backtest per group and per layer, no oracles, no
# accuracy; each gives the page's answer one line
several = len(imported) + len(forgets) + len(chosen) > 1
forget_lines = [(f"{md(info.name)}: " if several else "") + md(line)
                for info, view in [*((i, imported_view) for i in imported), *((i, forget_view) for i in forgets)]
                if (line := view(info)) is not None]
if not chosen:
    lines = forget_lines + (["Imported films have no oracle and no target task: their comparison is the backtest, "
                             "hiding Θ0 and predicting it back from the later checkpoints."] if imported else [])
    headline.markdown("\n\n".join(f"**{line}**" for line in lines))
    st.stop()

loaded = [(info, res) for info in chosen if (res := load_results(info)) is not None]
domain = pick_domain([res for _, res in loaded], "compare-domain")
loaded = [(info, res.at_domain(domain)) for info, res in loaded]
headline.markdown("\n\n".join(f"**{line}**" for line in retrodiction_headlines(loaded) + forget_lines))
for info, res in loaded:
    st.caption(md(f"{info.name}: {protocol_line(res.config)}"))
    for method, reason in invalid_methods(res.rows).items():
        st.warning(f"{md(run_label(info))}: **{md(method_label(method))}** could not predict — {md(reason)}")


def layer_backtest_figure(info, res) -> go.Figure | None:
    """Backtest error per layer for the first seed of one run (computed here on demand; predictions only, cached)."""
    from screens._common import layer_backtest_rows

    seed = res.seeds[0]
    methods = [m for m in res.config.methods if m != BASELINE] + ([OFFICIAL] if res.config.official_known else [])
    rows = layer_backtest_rows(info.id, info.updated, seed, tuple(methods), res.config.official_known)
    rows = scored_backtest_rows(rows, "Per-layer backtest")
    if not rows:
        return None
    return legend_below(layer_backtest_bars(pd.DataFrame(rows), f"Backtest per layer ({info.name}, seed {seed})"))


tabs = st.tabs(["Target accuracy", "Source accuracy", "Backtest", "Retrodiction", "Distance to the oracle",
                "All numbers", "Verdicts"])
with tabs[0]:
    show_figure(paired_bars(loaded, "target_acc", "Target accuracy after fine-tuning: predictor vs its shrinkage "
                            "control", "target test accuracy (fraction)"), "compare-target")
with tabs[1]:
    show_figure(paired_bars(loaded, "source_acc", "Source accuracy before fine-tuning (the predicted weights as they "
                            "are)", "source test accuracy (fraction)"), "compare-source")
with tabs[2]:
    for info, res in loaded:
        st.markdown(("" if len(loaded) == 1 else f"{md(info.name)}: ") + md(backtest_headline(res)))
    fig = backtest_figure(loaded)
    if fig is not None:
        show_figure(fig, "compare-backtest")
    else:
        st.info("No backtest figures in these runs.")
    if st.toggle("Backtest per layer too (first seed of each run; computed on demand)", key="compare-layers"):
        for info, res in loaded:
            layer_fig = layer_backtest_figure(info, res)
            if layer_fig is not None:
                show_figure(layer_fig, f"compare-backtest-layers-{info.id}")
with tabs[3]:
    retrodiction_section(loaded)
with tabs[4]:
    fig = oracle_figure(loaded)
    if fig is not None:
        show_figure(fig, "compare-oracle")
    else:
        st.info("These runs have no oracle (the real model trained on ×2, ×4 … more data): the quick preset turns "
                "them off because its source pool is too small. The standard preset trains them.")
with tabs[5]:
    st.caption("Means over seeds; *vs naive* and *vs shrink* are paired differences of target accuracy on the same "
               "seed, with Student-t 95 % intervals when there are two seeds or more (— where there is none).")
    shown, raw = numbers_table(loaded)
    st.dataframe(shown, hide_index=True, width="stretch")
    st.download_button("Download this table (CSV)", raw.to_csv(index=False), "know-compare.csv", "text/csv",
                       on_click="ignore")
with tabs[6]:
    for info, res in loaded:
        if len(loaded) > 1:
            st.markdown(f"**{md(run_label(info))}**")
        for line in collapse_verdicts(res.verdicts):
            st.markdown(f"- {md(line)}")
