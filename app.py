"""KNOW Explorer's dashboard: a router over ``pages/``; nothing heavy happens here.

Start it with ``bash scripts/start.sh`` (or ``streamlit run app.py``); runs are read from ``$KNOW_RUNS_DIR``
(default ``./runs``). Experiments run in background worker processes (``know_core.jobs.worker``, launched by
``know_core.jobs``), never in this one.
"""

import logging
import os

import streamlit as st

from pages._presentation import presentation_toggle

st.set_page_config(page_title="KNOW Explorer", page_icon="⏪", layout="wide")
page = st.navigation([
    st.Page("pages/experiments.py", title="Experiments", icon=":material/play_circle:", default=True),
    st.Page("pages/trajectory.py", title="Trajectory", icon=":material/scatter_plot:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/scaling.py", title="Scaling", icon=":material/trending_up:"),
    st.Page("pages/sweeps.py", title="Sweeps", icon=":material/grid_on:"),
    st.Page("pages/known.py", title="KNOWN", icon=":material/neurology:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/folder_open:"),
    st.Page("pages/present.py", title="Present", icon=":material/co_present:"),
])
presentation_toggle()  # ?present=1: large type and no prose on every page, drawn on every run so it survives switches
st.sidebar.caption("KNOW Explorer — structured forgetting and weight retrodiction "
                   "([paper](https://arxiv.org/abs/2508.05059)).")
try:
    page.run()
except Exception as exc:  # st.stop and st.rerun are BaseExceptions and pass through
    if os.environ.get("KNOW_RAISE_PAGE_ERRORS"):  # the test suite wants the real traceback
        raise
    logging.getLogger("know_explorer").exception("page %s failed", page.title)
    st.error(f"This page hit a problem it could not handle ({type(exc).__name__}). The other pages and your runs "
             "are unaffected; the details are in the server's log.")
