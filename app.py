"""KNOW Explorer's dashboard: a router over ``pages/``; nothing heavy happens here.

Start it with ``bash scripts/start.sh`` (or ``streamlit run app.py``); runs are read from ``$KNOW_RUNS_DIR``
(default ``./runs``).
"""

import streamlit as st

st.set_page_config(page_title="KNOW Explorer", page_icon="⏪", layout="wide")
page = st.navigation([st.Page("pages/runs.py", title="Runs", icon="📂", default=True)])
page.run()
