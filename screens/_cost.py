"""The Cost section of the Scaling page: KNOW's overhead beside its gain, the oracle's cost and gain, the break-even.

Everything is computed by ``know_core.api.cost_ledger``; this module lays it out: a cost-against-gain figure, a table
(CSV download) and the notes on what the figures rest on. The ``standard`` preset's reference run shipped in docs/
can be shown beside the chosen runs."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from know_core.api import base_name, break_even_text, cost_ledger, method_colour, method_label, standard_reference
from screens._common import md, show_figure
from screens._figures import reference_line

INTRO = (
    "What KNOW costs beside what it gains. **Overhead**: what KNOW adds once per source network — the forgetting "
    "film, the prediction, the control film for `+dc` variants and, for the default KNOWN, its meta-training spread "
    "over the uses you set (pre-training Θ0 is common to every option and not counted). **Alternative**: the oracle, "
    "the network really trained on ×k the data, at its measured cost. **Gain**: target accuracy minus naive's, paired "
    "by seed, with its 95 % interval. **Break-even**: (overhead ÷ oracle cost) ÷ (gain ÷ oracle gain) — the number of "
    "downstream tasks after which KNOW's gains, each accuracy point priced at what the oracle pays for it, have "
    "paid for its overhead (below 1: cheaper per point than the oracle from the first task). *No break-even* where "
    "KNOW's gain is not distinguishable from zero; *no price* where the oracle's own gain is not.")


def _ci(entry) -> str:
    if not entry:
        return ""
    m, ci = entry
    return f"{m:+.4f}" + (f" [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "")


def ledger_frame(ledger: dict, source: str) -> pd.DataFrame:
    out = []
    for r in ledger["rows"]:
        be = r["break_even"] or {}
        ratio = be.get("gain_ratio_ci95")
        out.append({
            "run": source, "method": method_label(r["method"]), "scale": f"×{r['scale']:g}",
            "overhead s (wall)": r["overhead_s"], "overhead s (CPU)": r["overhead_cpu_s"],
            **{f"· {k} s": v for k, v in r["parts"].items()},
            "meta-training": r.get("meta_training", ""),
            "oracle s (wall)": r["oracle_s"], "gain vs naive [95% CI]": _ci(r["gain"]),
            "oracle gain [95% CI]": _ci(r["oracle_gain"]),
            "cost ÷ oracle's": be.get("cost_ratio"),
            "gain ÷ oracle's": (f"{be['gain_ratio']:.2f}" if be.get("gain_ratio") is not None else "")
            + (f" [{ratio[0]:.2f}, {ratio[1]:.2f}]" if ratio else ""),
            "break-even (tasks)": break_even_text(r["break_even"]), "why": be.get("why", ""),
        })
    return pd.DataFrame(out)


def break_even_frame(ledger: dict) -> pd.DataFrame:
    """Methods down, scales across, the break-even (or why there is none) in each cell."""
    cells = {(method_label(r["method"]), f"×{r['scale']:g}"): break_even_text(r["break_even"]) for r in ledger["rows"]}
    methods = list(dict.fromkeys(m for m, _ in cells))
    scales = list(dict.fromkeys(s for _, s in cells))
    return pd.DataFrame([[cells.get((m, s), "") for s in scales] for m in methods], index=methods, columns=scales)


def cost_figure(ledger: dict, title: str) -> go.Figure:
    """Gain against one-off cost: each KNOW variant and scale, and each oracle (stars); up and left is better."""
    fig = go.Figure()
    oracles = {}
    for r in ledger["rows"]:
        if r["overhead_s"] is None:
            continue
        g, ci = r["gain"]
        fig.add_trace(go.Scatter(
            x=[r["overhead_s"]], y=[g], mode="markers", name=f"{method_label(r['method'])} ×{r['scale']:g}",
            marker=dict(color=method_colour(base_name(r["method"])), size=9 + 2 * math.log2(r["scale"]),
                        symbol="diamond" if r["method"].endswith("+dc") else "circle"),
            error_y=dict(type="data", symmetric=False, array=[ci[1] - g] if ci else [0],
                         arrayminus=[g - ci[0]] if ci else [0])))
        if r["oracle_s"] is not None and r["oracle_gain"]:
            oracles[r["scale"]] = (r["oracle_s"], *r["oracle_gain"])
    for scale, (cost, g, ci) in sorted(oracles.items()):
        fig.add_trace(go.Scatter(
            x=[cost], y=[g], mode="markers", name=f"{method_label('oracle')} ×{scale:g}",
            marker=dict(color=method_colour("oracle"), size=14, symbol="star"),
            error_y=dict(type="data", symmetric=False, array=[ci[1] - g] if ci else [0],
                         arrayminus=[g - ci[0]] if ci else [0])))
    reference_line(fig, 0, method_label("naive"), "grey")
    fig.update_layout(title=title, xaxis=dict(type="log", title="one-off cost, wall seconds (log scale)"),
                      yaxis_title="gain in target accuracy vs naive (95% CI)", height=430, margin=dict(t=60))
    return fig


def cost_section(runs: list[tuple[str, object]]) -> None:
    """The Cost section for ``runs`` — (label, ExperimentResult) pairs — and, on request, the standard reference."""
    st.subheader("Cost")
    st.markdown(INTRO)
    left, right = st.columns(2)
    uses = left.number_input("Spread KNOWN's meta-training over this many uses", min_value=1, value=1, step=1,
                             key="cost-uses", help="1 charges all of it to this run; the shipped checkpoint's card "
                                                   "says how long collecting its films and training it took")
    show_ref = right.toggle("Show the standard preset's reference run (docs/standard-results.json)", value=True,
                            key="cost-reference")
    entries = list(runs)
    if show_ref:
        reference = standard_reference()
        if reference is None:
            right.caption("This installation has no docs/standard-results.json.")
        else:
            entries.append(("standard preset (reference, 5 seeds)", reference))
    frames = []
    for i, (label, result) in enumerate(entries):
        ledger = cost_ledger(result, float(uses))
        if not ledger["rows"]:
            st.info(f"{md(label)}: no predicted method to cost.")
            continue
        show_figure(cost_figure(ledger, f"Cost against gain · {label}"), f"cost-{i}")
        st.markdown(f"**Break-even · {md(label)}** (downstream tasks, 95 % interval in brackets)")
        st.dataframe(break_even_frame(ledger), width="stretch", key=f"cost-be-{i}")
        per_task = ledger.get("finetune_per_task_s")
        if per_task:
            st.caption(md(f"{label}: one downstream fine-tuning takes {per_task:.2g} s (wall) — the per-task cost "
                          "every option pays alike."))
        for note in ledger["notes"]:
            st.caption(md(f"{label}: {note}"))
        frames.append(ledger_frame(ledger, label))
    if frames:
        df = pd.concat(frames, ignore_index=True)
        st.dataframe(df, hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(format="%.2f") for c in df.columns
                                    if c.endswith(" s") or "s (" in c or c == "cost ÷ oracle's"})
        st.download_button("Download the cost ledger (CSV)", df.to_csv(index=False), "know-cost.csv", "text/csv",
                           key="cost-csv")
