"""Where the pages live, and the one place KNOW Explorer touches a Streamlit internal: keeping ``st.navigation`` in
charge of a deep link.

Streamlit (checked up to 1.67) offers no supported switch for this. A server whose main script has a ``pages/`` folder
beside it starts in the legacy multipage mode (``PagesManager.uses_pages_directory``, set when the first session
starts) and leaves it only when a session runs ``st.navigation``. Until then a first visitor who opens a page's URL
(``/scaling``) gets that file run alone, without ``app.py``'s router, sidebar or error guard. The workaround lives in
:func:`leave_legacy_multipage_mode` alone; ``tests/test_routing.py`` fails when a Streamlit upgrade moves the flag.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

REPO = Path(__file__).resolve().parents[1]
PAGES = {name: f"pages/{name}.py" for name in ("experiments", "trajectory", "compare", "scaling", "sweeps", "known", "runs",
                                                "present")}


def leave_legacy_multipage_mode() -> None:
    """Run from a page's first import: in the legacy mode, switch Streamlit to ``st.navigation`` and rerun, so
    ``app.py`` routes the deep link like any other visit."""
    try:  # a private flag: if a release drops it, the worst case is the legacy mode on a first deep link
        from streamlit.runtime.pages_manager import PagesManager

        legacy = bool(PagesManager.uses_pages_directory)
    except (ImportError, AttributeError):
        return
    if legacy:
        PagesManager.uses_pages_directory = False
        st.rerun()
