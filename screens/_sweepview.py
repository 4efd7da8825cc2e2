"""The Sweeps page's parts: a card per sweep (progress, cancel, resume, refused cells) and the heatmap of one metric
over two of its columns, with the runs behind a clicked cell."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from know_core.api import (
    BASELINE,
    SWEEP_FILM_METRICS,
    SWEEP_METRICS,
    KnowError,
    heatmap_data,
    method_label,
    resume_sweep,
    stop_sweep,
)
from screens._figures import show_figure
from screens._reads import runs_dir
from screens._routing import PAGES
from screens._text import md

DIMS = ("k", "seed", "method")  # columns of every sweep table a heatmap can use besides the sweep's axes
FILM = SWEEP_FILM_METRICS  # one value per seed's film, not per method
ALL, NONE = "(all)", "(none)"
MAX_FACETS = 8
NOT_METRICS = {"seed", "k", "scale", "cell", "run_id"}


def counts_line(counts: dict[str, int]) -> str:
    parts = [f"{counts.get(s, 0)} {s}" for s in ("done", "running", "failed")]
    parts += [f"{counts[s]} {s}" for s in ("pending", "skipped", "cancelled") if counts.get(s)]
    return f"{counts.get('finished', 0)} of {counts.get('total', 0)} units finished · " + " · ".join(parts)


def sweep_card(state: dict[str, Any]) -> None:
    """One sweep: its status, a progress bar with done / running / failed counts, cancel or resume, and the cells
    the experiment refused or adapted."""
    status, counts = state["status"], state["counts"]
    with st.container(border=True):
        head, button = st.columns([5, 1])
        head.markdown(f"**{md(state['name'])}** · `{state['id']}` · **{status}** · axes: "
                      f"{md(', '.join(state['axes']) or 'none')}")
        total = max(counts.get("total", 0), 1)
        st.progress(min(counts.get("finished", 0) / total, 1.0), text=counts_line(counts))
        if status == "running":
            if button.button("Cancel", key=f"cancel-sweep-{state['id']}", icon=":material/stop_circle:"):
                _act(stop_sweep, state["id"])
        elif status in ("failed", "cancelled"):
            if button.button("Resume", key=f"resume-sweep-{state['id']}", icon=":material/replay:"):
                _act(resume_sweep, state["id"])
            st.caption(md(state.get("error") or ""))
        elif status == "damaged":  # its table: sweep.json itself is whole, or there would be no card
            st.error(f"{md(state.get('error') or 'damaged')} — `runs reindex` rebuilds it from the cells' runs")
        refused = [c for c in state["cells"] if c.get("error")]
        noted = [c for c in state["cells"] if c.get("notes")]
        if refused or noted or state.get("failed_units"):
            with st.expander(f"Cells: {len(refused)} refused, {len(noted)} adapted, "
                             f"{len(state.get('failed_units') or {})} units failed"):
                for c in refused:
                    st.markdown(f"- refused: {md(c['error'])}")
                for c in noted:
                    st.markdown(f"- {md(c['label'])}: {md('; '.join(c['notes']))}")
                for unit, error in (state.get("failed_units") or {}).items():
                    st.markdown(f"- unit {md(unit)} failed: {md(error)}")


def _act(action, sweep_id: str) -> None:
    try:
        action(runs_dir(), sweep_id)
    except KnowError as exc:
        st.error(md(exc))
        return
    st.rerun(scope="app")


def metric_columns(table: pd.DataFrame, axes: list[str]) -> list[str]:
    """SWEEP_METRICS present in the table first, then every other numeric column (costs, per-group errors)."""
    numeric = [c for c in table.columns if c not in NOT_METRICS and c not in axes
               and pd.api.types.is_numeric_dtype(table[c]) and table[c].notna().any()]
    named = [m for m in SWEEP_METRICS if m in table.columns and (m in numeric or m == "forgot")]
    return named + [c for c in numeric if c not in named]


def metric_label(metric: str) -> str:
    return f"{metric} — {SWEEP_METRICS[metric]}" if metric in SWEEP_METRICS else metric


def default_axes(table: pd.DataFrame, axes: list[str], shown: list[str]) -> list[str]:
    """The columns in the order the heatmap's x and y default to: swept axes (more than one value) first, then k,
    seed and method; an axis that holds one value comes last (a heatmap over it is a single cell)."""
    swept = [a for a in axes if a in shown and table[a].nunique(dropna=False) > 1]
    return swept + [d for d in DIMS if d in shown] + [d for d in shown if d not in swept and d not in DIMS]


def filter_options(column: str, values: list[str]) -> list[str]:
    """A filter pools its column only where that pools seeds: (all) is offered for seed and for a column with one
    value; any other column that varies (an axis, method, k) is filtered to one value."""
    return [ALL] + values if column == "seed" or len(values) <= 1 else values


def default_filter(column: str, values: list[str]) -> str:
    """The filter a heatmap starts with: a predicting method (not a baseline or control), one step back, all else
    pooled."""
    if column == "method":
        preferred = [v for v in values if v not in (BASELINE, "scratch", "control", "(film)")
                     and not v.startswith(("oracle", "shrink:"))]
        return (preferred or values or [ALL])[0]
    if column == "k":
        steps = [v for v in values if v != "nan"]
        return steps[0] if steps else ALL
    return ALL


def _fmt(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def _label(v: Any, column: str = "") -> str:
    """How a value of ``column`` reads on the heatmap: a method by its label (the key stays in the table and the URL),
    a whole float without its ``.0``."""
    if isinstance(v, float) and v.is_integer():
        return f"{v:g}"
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "none"
    return method_label(str(v)) if column == "method" else str(v)


def value_label(column: str) -> callable:
    """The ``format_func`` of a selectbox over ``column``'s values: methods by label, anything else as it is."""
    return method_label if column == "method" else str


def heat_cells(table: pd.DataFrame, x: str, y: str, metric: str, filters: dict[str, str],
               axes: list[str] | None = None) -> pd.DataFrame:
    """``heatmap_data`` with its x / y values as labels and a hover text per cell (mean, 95 % interval, n)."""
    heat = heatmap_data(table, x, y, metric, {k: v for k, v in filters.items() if v != ALL}, axes)
    if heat.empty:
        return heat
    heat = heat[heat["n"] > 0].copy()
    heat["xl"], heat["yl"] = heat[x].map(lambda v: _label(v, x)), heat[y].map(lambda v: _label(v, y))
    heat["hover"] = [f"{x} = {r.xl}<br>{y} = {r.yl}<br>{metric}: {_fmt(r.mean)} "
                     + (f"[{_fmt(r.lo)}, {_fmt(r.hi)}]" if r.lo is not None and not pd.isna(r.lo) else "(one value)")
                     + f"<br>n = {r.n} · {len(r.runs)} run(s)" for r in heat.itertuples()]
    return heat.reset_index(drop=True)


def facet_cells(table: pd.DataFrame, x: str, y: str, metric: str, filters: dict[str, str],
                facet: str | None, axes: list[str] | None = None) -> pd.DataFrame:
    """:func:`heat_cells` for each value of ``facet`` (its first MAX_FACETS), stacked with a ``facet`` column; the
    row index is what a clicked marker reports."""
    values = [None] if facet is None else sorted(table[facet].map(str).unique())[:MAX_FACETS]
    parts = []
    for value in values:
        heat = heat_cells(table, x, y, metric, filters if value is None else {**filters, facet: value}, axes)
        if not heat.empty:
            name = "" if value is None else f"{facet} = {value_label(facet)(value)}"
            parts.append(heat.assign(facet=name, hover=(name + "<br>" if name else "") + heat["hover"]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _order(values: pd.Series, column: str = "") -> list[str]:
    """The labels of ``values`` in the order of the values themselves (methods sorted by key, as before labels)."""
    uniq = list(dict.fromkeys(values.dropna().tolist()))
    try:
        uniq.sort()
    except TypeError:
        uniq.sort(key=str)
    return [_label(v, column) for v in uniq] + (["none"] if values.isna().any() else [])


def heat_figure(heat: pd.DataFrame, x: str, y: str, metric: str, title: str,
                zrange: tuple[float, float] | None = None) -> go.Figure:
    """A heatmap of ``heat``'s means (blank where a pair of values has no data) under an invisible square marker
    per cell carrying the hover text and the click (Streamlit reports no selection on heatmap traces)."""
    xs, ys = _order(heat[x], x), _order(heat[y], y)
    z = [[None] * len(xs) for _ in ys]
    text = [[""] * len(xs) for _ in ys]
    hover = [[""] * len(xs) for _ in ys]
    for r in heat.itertuples():
        i, j = ys.index(r.yl), xs.index(r.xl)
        z[i][j], text[i][j], hover[i][j] = r.mean, _fmt(r.mean), r.hover
    # differences centre on 0 (blue: better than naive); errors against keeping Θ on 1.0 (red: worse than keeping it)
    error = metric.startswith(("warm_", "backtest_")) and not metric.startswith("warm_cos")
    colours, mid, bar = (("RdBu", 0, metric) if metric.startswith("vs_")
                         else ("RdBu_r", 1.0, f"{metric}<br>(1 = keeping Θ)") if error else ("Viridis", None, metric))
    if zrange and mid is not None:  # a given range ignores zmid: make it symmetric about the reference instead
        half = max(abs(zrange[0] - mid), abs(zrange[1] - mid))
        zrange = (mid - half, mid + half)
    fig = go.Figure(go.Heatmap(z=z, x=xs, y=ys, text=text, texttemplate="%{text}", customdata=hover,
                               hovertemplate="%{customdata}<extra></extra>", hoverongaps=False,
                               colorbar=dict(title=bar), colorscale=colours,
                               zmid=mid, zmin=zrange[0] if zrange else None,
                               zmax=zrange[1] if zrange else None))
    clear = dict(marker=dict(opacity=0))
    fig.add_trace(go.Scatter(x=heat["xl"], y=heat["yl"], mode="markers", hovertext=heat["hover"], hoverinfo="text",
                             showlegend=False, marker=dict(symbol="square", size=36, opacity=0),
                             selected=clear, unselected=clear, customdata=list(heat.index)))
    fig.update_layout(title=title, height=max(320, 90 + 70 * len(ys)), clickmode="event+select",
                      xaxis=dict(type="category", title=x, categoryorder="array", categoryarray=xs),
                      yaxis=dict(type="category", title=y, categoryorder="array", categoryarray=ys))
    return fig


def show_heatmap(fig: go.Figure, key: str) -> int | None:
    """Draw the heatmap; the index (into the heat table) of the cell last clicked, if any."""
    event = show_figure(fig, key, on_select="rerun", selection_mode="points")
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    for p in points:
        data = p.get("customdata")
        if isinstance(data, list):
            data = data[0] if data else None
        if isinstance(data, (int, float)):
            return int(data)
    return None


def cell_links(heat: pd.DataFrame, x: str, y: str, clicked: list[int | None], key: str) -> None:
    """Pick a cell (the one clicked last, on any of the heatmaps) and open its runs on Trajectory and Compare."""
    labels = [(f"{r.facet} · " if r.facet else "") + f"{x} = {r.xl} · {y} = {r.yl}" for r in heat.itertuples()]
    now = {c for c in clicked if c is not None and 0 <= c < len(labels)}
    new = sorted(now - st.session_state.get(f"{key}-clicked", set()))  # a click the last run had not seen
    st.session_state[f"{key}-clicked"] = now
    if new:
        st.session_state[key] = labels[new[0]]
    if st.session_state.get(key) not in labels:
        st.session_state[key] = labels[0]
    label = st.selectbox("Cell (click one on the heatmap, or pick it here)", labels, key=key)
    row = heat.iloc[labels.index(label)]
    runs = list(row["runs"])
    st.caption(md(row["hover"].replace("<br>", " · ")))
    cols = st.columns(min(len(runs), 4) + 1)
    cols[0].page_link(PAGES["compare"], label=f"Compare its {len(runs)} run(s)", icon=":material/compare_arrows:",
                      query_params={"runs": ",".join(runs)})
    for i, run_id in enumerate(runs[:4]):
        cols[i + 1].page_link(PAGES["trajectory"], label=f"Trajectory of {run_id[-6:]}",
                              icon=":material/scatter_plot:", query_params={"run": run_id}, help=run_id)
