"""Sweeps page: launch a grid of experiment settings × seeds, watch and cancel it, and read it as a heatmap."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from know_core.api import (
    SWEEP_PHASES,
    ConfigError,
    KnowError,
    available_presets,
    read_sweep_table,
    start_sweep,
    sweep_headline,
    sweep_spec,
    watch_sweep,
)
from screens._common import list_runs, md, runs_dir, sync_url, url_value, welcome
from screens._live import live_panel, note_running
from screens._presentation import prose
from screens._sweepview import (
    ALL,
    DIMS,
    FILM,
    NONE,
    cell_links,
    default_axes,
    default_filter,
    facet_cells,
    filter_options,
    heat_figure,
    metric_columns,
    metric_label,
    show_heatmap,
    sweep_card,
    value_label,
)

PAGE = {"title": "Sweeps", "icon": ":material/grid_on:", "order": 50}  # read by screens._routing unrun

st.title("Sweeps")
headline = st.empty()  # the chosen sweep's answer, filled in once its table is read (below)
prose(
    "A **sweep** runs the experiment over a grid of settings (axes such as `source.r=0.33,0.5,0.7`) with several "
    "seeds per cell, in a background worker. Watch its units here, cancel or resume it, then read any metric as a "
    "heatmap over two columns with its 95 % interval over seeds; a cell's runs open on Trajectory and Compare.")

if not list_runs():
    welcome()


def launch_form() -> None:
    with st.form("sweep-form"):
        c1, c2 = st.columns(2)
        preset_name = c1.selectbox("Preset (the base experiment)", list(available_presets()), key="sweep-preset")
        name = c1.text_input("Sweep name", value="my sweep")
        seeds = c1.text_input("Seeds of every cell", "0-2", help="0-9, 0,3,7 or a mix")
        what = c1.multiselect("What each seed measures", list(SWEEP_PHASES), default=list(SWEEP_PHASES),
                              help="forgetting is always recorded; the rest need it")
        axes = c2.text_area("Axes, one per line", "source.r=0.33,0.5", height=120,
                            help="a dotted experiment setting and its values, e.g. source.stages=3,5,7")
        workers = c2.number_input("Worker processes (0: the cores)", 0, 64, 0)
        big = c2.checkbox("Allow a grid of more than 10 000 units")
        submitted = st.form_submit_button("Launch sweep", type="primary", icon=":material/rocket_launch:")
    if not submitted:
        return
    try:
        spec = sweep_spec(preset_name, axes.splitlines(), seeds, what, yes=big)
        sweep_id = start_sweep(spec, runs_dir(), name.strip() or None, int(workers) or None)
        state = watch_sweep(runs_dir(), sweep_id)
    except (ConfigError, KnowError, ValueError) as exc:
        st.error(f"Not launched — {md(exc)}")
        return
    refused = [c for c in state["cells"] if c.get("error")]
    st.success(f"Launched **{md(state['name'])}** ({sweep_id}): {len(state['cells']) - len(refused)} cells × "
               f"{len(spec.seeds)} seeds in the background.")
    for c in refused:
        st.warning(f"Left out: {md(c['error'])}")
    for c in state["cells"]:
        if c.get("notes"):
            st.caption(f"{md(c['label'])}: {md('; '.join(c['notes']))}")


def sweeps_panel() -> None:
    sweeps = list_runs(kind="sweep")[:8]
    states = []
    for info in sweeps:
        try:
            states.append(watch_sweep(runs_dir(), info.id))
        except KnowError as exc:  # a damaged sweep says why; the others still show
            st.error(f"Sweep {md(info.name)} ({md(info.id)}) cannot be read: {md(exc)}")
    note_running("sweep", any(s["status"] == "running" for s in states))  # at the end: the heatmap's final table
    if not sweeps:
        st.info("No sweep yet: launch one above (or `python -m know_core sweep …`).")
    for state in states:
        sweep_card(state)


@st.cache_data(show_spinner=False, max_entries=16)
def sweep_table(root: str, sweep_id: str, updated: float, finished: int) -> pd.DataFrame:
    return read_sweep_table(root, sweep_id)


def pick(label: str, options: list, key: str, url: str, default, **kw):
    if st.session_state.get(key) not in options:
        st.session_state[key] = url_value(url, default if default in options else options[0], options)
    return st.selectbox(label, options, key=key, **kw)


def heatmap_section() -> None:
    sweeps = list_runs(kind="sweep")
    if not sweeps:
        return
    st.subheader("Heatmap")
    ids = [s.id for s in sweeps]
    newest_done = next((s.id for s in sweeps if s.status == "done"), ids[0])
    sweep_id = pick("Sweep", ids, "sweep-pick", "sweep", newest_done,
                    format_func=lambda i: f"{sweeps[ids.index(i)].name} ({i})")
    info = sweeps[ids.index(sweep_id)]
    sync_url(sweep=sweep_id)
    try:
        state = watch_sweep(runs_dir(), sweep_id)
        table = sweep_table(runs_dir(), sweep_id, info.updated, state["counts"]["finished"])
    except KnowError as exc:
        st.error(f"Cannot read sweep {md(sweep_id)}: {md(exc)}")
        return
    if table.empty:
        st.info("No cell of this sweep has finished yet; the heatmap fills in as cells finish.")
        return
    headline.markdown(f"#### {md(sweep_headline(table, info.name or sweep_id))}")
    axes = [a for a in state["axes"] if a in table.columns]
    if not metric_columns(table, axes):
        st.info("This sweep's table holds no numeric metric yet.")
        return
    metric, x, y, facet, filters = heatmap_controls(table, axes)
    try:
        heat = facet_cells(table, x, y, metric, filters, facet, axes)
    except KnowError as exc:  # a heatmap cell would pool sweep cells or rows of one seed: say which columns
        st.warning(md(exc))
        return
    if heat.empty:
        st.info("No data for these filters; widen one of them (choose (all)).")
        return
    fixed = ", ".join(f"{k} = {value_label(k)(v)}" for k, v in filters.items() if v != ALL)
    title = f"{metric}: mean over seeds by {x} × {y}" + (f" ({fixed})" if fixed else "")
    zrange = (heat["mean"].min(), heat["mean"].max())  # one colour scale across facets
    clicked = []
    for value, part in heat.groupby("facet", sort=False, dropna=False):
        named = f"{title} — {value}" if value else title
        clicked.append(show_heatmap(heat_figure(part, x, y, metric, named, zrange),
                                    f"sweep-heat-{sweep_id}-{metric}-{x}-{y}-{facet}-{value}"))
    st.caption(f"{md(metric_label(metric))}. Hover a cell for its mean, 95 % interval over seeds (Student's t) and n; "
               "blank cells have no data under these filters.")
    cell_links(heat, x, y, clicked, f"sweep-cell-{sweep_id}")


def heatmap_controls(table: pd.DataFrame, axes: list[str]) -> tuple[str, str, str, str | None, dict[str, str]]:
    """(metric, x, y, facet or None, filters): chosen from the URL, then the last choice, then defaults."""
    dims = axes + [d for d in DIMS if d in table.columns]
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        metric = pick("Metric", metric_columns(table, axes), "sweep-metric", "metric", "vs_naive",
                      format_func=metric_label)
    shown = [d for d in dims if not (metric in FILM and d in ("method", "k"))]
    shown = shown if len(shown) >= 2 else dims  # a sweep without axes: a film metric still needs two columns
    order = default_axes(table, axes, shown)  # swept axes first: never two constant settings
    with c2:
        x = pick("x axis", shown, "sweep-x", "x", order[0])
    with c3:
        y = pick("y axis", [d for d in shown if d != x], "sweep-y", "y", next(d for d in order if d != x))
    rest = [d for d in shown if d not in (x, y)]
    with c4:
        facet = pick("One heatmap per", [NONE] + rest, "sweep-facet", "facet", NONE)
    filters = {}
    rest = [d for d in rest if d != facet]
    for col, d in zip(st.columns(len(rest)) if rest else [], rest):
        values = sorted(table[d].map(str).unique().tolist())
        with col:
            filters[d] = pick(f"{d} (filter)", filter_options(d, values), f"sweep-f-{d}", f"f_{d}",
                              default_filter(d, values), format_func=value_label(d))
    facet = None if facet == NONE else facet
    sync_url(metric=metric, x=x, y=y, facet=facet, **{f"f_{d}": None if v == ALL else v for d, v in filters.items()})
    return metric, x, y, facet, filters


launch_form()
st.subheader("Progress")
st.caption("Live: refreshed every two seconds while a sweep runs. Sweeps keep running when you close the page.")
live_panel("sweep", sweeps_panel, every=2.0)
heatmap_section()
