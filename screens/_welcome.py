"""First open: what the app is for, and one button that starts the quick demo."""

from __future__ import annotations

import streamlit as st

from know_core.api import KnowError, start_preset
from screens._reads import list_runs, runs_dir
from screens._routing import PAGES
from screens._text import md


def launch_quick_demo() -> None:
    try:
        run_id = start_preset("quick", runs_dir(), "quick demo")
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
            "on your machine and shows, with real numbers, whether the guess helps. The quick demo (Fashion-MNIST, "
            "about a minute on two CPU cores) fills every page.")
    if st.button("Launch the quick demo", type="primary", icon=":material/rocket_launch:", key=f"demo-{where}"):
        launch_quick_demo()


def finished_or_welcome(runs: list) -> None:
    """Stop the page with a helpful message when there is nothing finished to show yet."""
    if runs:
        return
    if list_runs(kind="experiment"):
        st.info("No experiment has finished yet; watch the running ones on the Experiments page.")
        st.page_link(PAGES["experiments"], label="Go to Experiments", icon=":material/play_circle:")
    else:
        welcome("finished experiment ")
    st.stop()
