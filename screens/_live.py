"""Live sections: a panel that reruns every few seconds while runs of one kind are running, and redraws the whole page
once the last of them has ended (so figures below it pick up the final results)."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from screens._reads import list_runs


def live_panel(kind: str, panel: Callable[[], None], every: float) -> None:
    """Draw ``panel`` in a fragment that reruns every ``every`` seconds while a ``kind`` run is running."""
    running = bool(list_runs(kind=kind, status="running"))
    st.session_state[f"live-{kind}"] = running
    st.fragment(run_every=every if running else None)(panel)()


def note_running(kind: str, running: bool) -> None:
    """Called by the panel with what it just read: when the last ``kind`` run has just ended, redraw the page (and
    stop polling)."""
    key = f"live-{kind}"
    if st.session_state.get(key) and not running:
        st.session_state[key] = False
        st.rerun(scope="app")
    st.session_state[key] = running
