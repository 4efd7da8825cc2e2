"""What every page shares: the run store, cached reads of runs, URL-backed widget state, figure export, first open.

Reads are cached by (run id, last update), so a finished run is read from disk once per server and a page switch
redraws from memory. The server process itself never trains: jobs run in ``know_core.jobs`` workers, and the few
numbers computed here (PCA of a few dozen points) use one thread so they never fight a worker for the cores.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path
from typing import Any

import streamlit as st
import torch

from know_core import jobs
from know_core.errors import KnowError, RunStoreError
from know_core.store import DEFAULT_RUNS_DIR, RunInfo, RunStore

torch.set_num_threads(1)


def _leave_legacy_multipage_mode() -> None:
    """A fresh server whose first visitor opens a page's URL (``/scaling``) runs that file alone, in Streamlit's
    legacy ``pages/`` mode, until some session runs ``app.py``; switch to ``st.navigation`` at once instead."""
    try:  # an internal flag: if a Streamlit release drops it, the worst case is the legacy mode on a deep link
        from streamlit.runtime.pages_manager import PagesManager

        legacy = bool(PagesManager.uses_pages_directory)
    except (ImportError, AttributeError):
        return
    if legacy:
        PagesManager.uses_pages_directory = False
        st.rerun()


_leave_legacy_multipage_mode()
REPO = Path(__file__).resolve().parents[1]
PAGES = {name: f"pages/{name}.py" for name in ("experiments", "trajectory", "compare", "scaling", "known", "runs")}
PLOT_CONFIG = {"displaylogo": False}


def runs_dir() -> str:
    return os.environ.get("KNOW_RUNS_DIR", DEFAULT_RUNS_DIR)


@st.cache_resource(show_spinner=False)
def _store(root: str) -> RunStore:
    return RunStore(root)


def store() -> RunStore:
    """The run store, or an error on the page (and a stop) when the runs directory cannot be used."""
    try:
        return _store(runs_dir())
    except KnowError as exc:
        st.error(f"Cannot open the runs directory {md(runs_dir())}: {md(exc)}")
        st.stop()


def list_runs(**filters: str) -> list[RunInfo]:
    try:
        return store().list_runs(**filters)
    except KnowError as exc:
        st.error(f"Cannot read the run index: {md(exc)}")
        st.stop()


@st.cache_data(show_spinner=False, max_entries=64)
def damage(root: str, run_id: str, updated: float) -> str | None:
    """Why a finished run cannot be read (a file missing, corrupt, too big, outside its folder or of the wrong
    shape), or None when it is whole; read once per run and update."""
    try:
        from know_core.runs import check_run

        check_run(RunStore(root), run_id)
    except RunStoreError as exc:
        return str(exc)
    return None


@st.cache_data(show_spinner=False, max_entries=32)
def results(root: str, run_id: str, updated: float) -> dict[str, Any]:
    """A finished experiment's results.json (verified against its manifest and validated)."""
    return RunStore(root).open(run_id).results()


@st.cache_resource(show_spinner=False, max_entries=6)
def seed_weights(root: str, run_id: str, updated: float, seed: int):
    from know_core.analysis import load_seed

    return load_seed(RunStore(root).open(run_id), seed)


@st.cache_data(show_spinner="Backtesting every layer…", max_entries=16)
def layer_backtest_rows(run_id: str, updated: float, seed: int, methods: tuple[str, ...],
                        official_known: str | None) -> list[dict]:
    from know_core.analysis import layer_backtest

    return layer_backtest(seed_weights(runs_dir(), run_id, updated, seed), list(methods), official_known)


def experiment_runs() -> list[RunInfo]:
    """Finished experiment runs that are readable (damaged ones are listed on the Runs page with the reason)."""
    return [r for r in list_runs(kind="experiment", status="done") if damage(runs_dir(), r.id, r.updated) is None]


def load_results(info: RunInfo) -> dict[str, Any] | None:
    try:
        return results(runs_dir(), info.id, info.updated)
    except KnowError as exc:
        st.error(f"Run {md(info.name)} is damaged: {md(exc)}")
        return None


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&])")


def md(text: Any) -> str:
    """``text`` escaped for Streamlit Markdown: a run name like ``![x](http://…)`` shows as those characters and
    never becomes an image, a link or a colour directive. Use it for every name or message inside Markdown."""
    return _MARKDOWN.sub(r"\\\1", str(text)).replace("\n", " ")


def run_label(info: RunInfo) -> str:
    cfg = info.config
    src = cfg.get("source", {})
    bits = [cfg.get("preset"), src.get("dataset"), src.get("model"), f"r={src.get('r'):g}" if src.get("r") else None]
    return f"{info.name} ({', '.join(str(b) for b in bits if b)})"


def url_value(name: str, default: Any, options: list | None = None, cast=str) -> Any:
    """The value of ``?name=`` if it is valid, else ``default``; used to seed a widget once per session."""
    raw = st.query_params.get(name)
    if raw is None:
        return default
    try:
        value = cast(raw)
    except (TypeError, ValueError):
        return default
    return value if options is None or value in options else default


def url_list(name: str, default: list, options: list) -> list:
    raw = st.query_params.get(name)
    if not raw:
        return default
    picked = [v for v in raw.split(",") if v in options]
    return picked or default


def sync_url(**values: Any) -> None:
    """Write the page's view into the URL (``?run=…&seed=…``) so it can be shared; None removes a key."""
    for key, value in values.items():
        if value is None or value == [] or value == "":
            if key in st.query_params:
                del st.query_params[key]
            continue
        text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        if st.query_params.get(key) != text:
            st.query_params[key] = text


def pick_run(runs: list[RunInfo], key: str = "run") -> RunInfo:
    """One run, from the URL, then the run last looked at on any page, then the newest."""
    ids = [r.id for r in runs]
    default = st.session_state.get("current_run") if st.session_state.get("current_run") in ids else ids[0]
    if key not in st.session_state or st.session_state[key] not in ids:
        st.session_state[key] = url_value("run", default, ids)
    run_id = st.selectbox("Run", ids, key=key, format_func=lambda i: run_label(runs[ids.index(i)]))
    st.session_state["current_run"] = run_id
    return runs[ids.index(run_id)]


def pick_runs(runs: list[RunInfo], key: str) -> list[RunInfo]:
    """Several runs to overlay (e.g. r = 0.5 vs r = 1/3): from the URL, then the last overlay picked on any page,
    then the run last looked at. ``key`` is the page's own widget key."""
    ids = [r.id for r in runs]
    if key not in st.session_state or not st.session_state[key] or not set(st.session_state[key]) <= set(ids):
        current = st.session_state.get("current_run")
        saved = [i for i in st.session_state.get("overlay_runs", []) if i in ids]
        st.session_state[key] = url_list("runs", saved or [current if current in ids else ids[0]], ids)
    chosen = st.multiselect("Runs (pick several to overlay them)", ids, key=key,
                            format_func=lambda i: run_label(runs[ids.index(i)]))
    st.session_state["overlay_runs"] = list(chosen)
    if chosen:
        st.session_state["current_run"] = chosen[0]
    return [runs[ids.index(i)] for i in chosen]


def kaleido_ready() -> bool:
    """PNG export needs the ``kaleido`` package and a Chromium (Debian's, found through BROWSER_PATH)."""
    if importlib.util.find_spec("kaleido") is None:
        return False
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        os.environ.setdefault("BROWSER_PATH", chromium)
    return chromium is not None


def show_figure(fig, key: str) -> None:
    """Draw a Plotly figure full-width with an export menu (interactive HTML; PNG where kaleido works)."""
    st.plotly_chart(fig, width="stretch", key=key, config=PLOT_CONFIG)
    with st.popover("Export figure", icon=":material/download:"):
        st.download_button("Interactive HTML", data=lambda: fig.to_html(include_plotlyjs=True, full_html=True),
                           file_name=f"{key}.html", mime="text/html", key=f"{key}-html", on_click="ignore")
        if kaleido_ready():
            st.download_button("PNG image", data=lambda: fig.to_image(format="png", scale=2),
                               file_name=f"{key}.png", mime="image/png", key=f"{key}-png", on_click="ignore")
        else:
            st.caption("PNG export needs the `kaleido` package (pip install kaleido) and Chromium; "
                       "HTML keeps the figure interactive.")


def intro(text: str) -> None:
    """The two or three sentences each page opens with, for readers who have never heard of KNOW."""
    st.markdown(text)


def launch_quick_demo() -> None:
    from know_core.experiment import preset

    try:
        run_id = jobs.launch(preset("quick"), runs_dir(), "quick demo")
    except KnowError as exc:
        st.error(f"Could not launch the quick demo: {md(exc)}")
        return
    st.session_state["current_run"] = run_id
    st.switch_page(PAGES["experiments"])


def welcome(where: str = "") -> None:
    """First open: what the app is for and one button that starts the quick demo."""
    st.info(f"No {where}runs in `{runs_dir()}` yet. **KNOW** (\"Learning from Oblivion\", CVPR 2026) makes a "
            "network *forget* step by step — fine-tuning it on ever smaller subsets of its data — and runs that film "
            "backwards to guess the weights it would have with 2×, 4×, 8× more data. This app runs that experiment "
            "on your machine and shows, with real numbers, whether the guess helps. The quick demo (digits, "
            "about a minute on two CPU cores) fills every page.")
    if st.button("Launch the quick demo", type="primary", icon=":material/rocket_launch:", key=f"demo-{where}"):
        launch_quick_demo()


def finished_or_welcome(runs: list[RunInfo]) -> None:
    """Stop the page with a helpful message when there is nothing finished to show yet."""
    if runs:
        return
    if list_runs(kind="experiment"):
        st.info("No experiment has finished yet; watch the running ones on the Experiments page.")
        st.page_link(PAGES["experiments"], label="Go to Experiments", icon=":material/play_circle:")
    else:
        welcome("finished experiment ")
    st.stop()


def scale_axis(scales: list[float]) -> dict[str, Any]:
    """A log2 x-axis with ×1, ×2, ×4 … ticks."""
    ticks = sorted(set(scales))
    return dict(type="log", tickvals=ticks, ticktext=[f"×{s:g}" for s in ticks],
                title="scaling factor: virtual source data ÷ |D0| (log scale)")
