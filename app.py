"""KNOW Explorer's dashboard: a router over ``pages/``; nothing heavy happens here.

Start it with ``bash scripts/start.sh`` (or ``streamlit run app.py``); runs are read from ``$KNOW_RUNS_DIR``
(default ``./runs``). Experiments run in background worker processes (``know_core.jobs``), never in this one.
"""

import streamlit as st

st.set_page_config(page_title="KNOW Explorer", page_icon="⏪", layout="wide")
page = st.navigation([
    st.Page("pages/experiments.py", title="Experiments", icon=":material/play_circle:", default=True),
    st.Page("pages/trajectory.py", title="Trajectory", icon=":material/scatter_plot:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/scaling.py", title="Scaling", icon=":material/trending_up:"),
    st.Page("pages/known.py", title="KNOWN", icon=":material/neurology:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/folder_open:"),
])
st.sidebar.caption("KNOW Explorer — structured forgetting and weight retrodiction "
                   "([paper](https://arxiv.org/abs/2508.05059)).")
page.run()
