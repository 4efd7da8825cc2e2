"""KNOW Explorer's dashboard: a router over the pages in ``screens/``; nothing heavy happens here.

Start it with ``bash scripts/start.sh`` (or ``streamlit run app.py``); runs are read from ``$KNOW_RUNS_DIR``
(default ``./runs``). Experiments run in background worker processes (``know_core.jobs.worker``, launched by
``know_core.jobs``), never in this one.
"""

import logging
import os

import streamlit as st

from screens._presentation import presentation_toggle
from screens._routing import navigation

st.set_page_config(page_title="KNOW Explorer", page_icon="⏪", layout="wide")
page = st.navigation(navigation())  # every page of screens/, from its PAGE entry (screens._routing)
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
