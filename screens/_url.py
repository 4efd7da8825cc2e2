"""URL-backed widget state: a page's view lives in its query string (``?run=…&seed=…``) so it can be shared, and the
run picked on one page is the default on the next."""

from __future__ import annotations

from typing import Any

import streamlit as st

from know_core.api import RunInfo
from screens._text import run_label


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
