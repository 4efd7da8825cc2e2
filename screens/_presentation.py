"""Presentation mode, for a lecture: a sidebar toggle kept in the URL (``?present=1``) that gives every page large
type, hides the prose (intro paragraphs, explanatory captions) and keeps the headlines and figures.

``app.py`` draws the toggle on every run, so its state survives page switches; pages write their prose through
:func:`prose`, and :func:`screens._figures.show_figure` enlarges figure fonts while :func:`presenting`.
"""

from __future__ import annotations

import streamlit as st

PARAM = "present"
KEY = "present-mode"
BASE_PX = 22  # the body text size in presentation mode; headings scale from it

# Streamlit sizes its text in rem, so a larger root size scales the whole page; headings get their own sizes.
CSS = f"""<style id="know-present">
html {{ font-size: {BASE_PX}px; }}
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li {{ font-size: {BASE_PX}px; }}
h1 {{ font-size: {BASE_PX * 2.4:.0f}px !important; }}
h2 {{ font-size: {BASE_PX * 1.6:.0f}px !important; }}
h3 {{ font-size: {BASE_PX * 1.35:.0f}px !important; }}
[data-testid="stMainBlockContainer"] {{ padding-top: 2.5rem; max-width: 100%; }}
</style>"""


def presenting() -> bool:
    """Whether presentation mode is on: the toggle's state, else (before app.py drew it, or in a page run alone)
    the URL's ``?present=1``."""
    if KEY in st.session_state:
        return bool(st.session_state[KEY])
    return st.query_params.get(PARAM) == "1"


def presentation_toggle() -> bool:
    """The sidebar toggle (seeded once per session from ``?present=``); writes its state into the URL and, when on,
    injects the large-type CSS. Returns whether presentation mode is on."""
    if KEY not in st.session_state:
        st.session_state[KEY] = st.query_params.get(PARAM) == "1"
    on = st.sidebar.toggle("Presentation mode", key=KEY,
                           help="Large type, no prose beyond the headlines, for a lecture (kept in the URL as "
                                "?present=1). The Present page steps through one run.")
    if on:
        if st.query_params.get(PARAM) != "1":
            st.query_params[PARAM] = "1"
        st.markdown(CSS, unsafe_allow_html=True)
    elif PARAM in st.query_params:
        del st.query_params[PARAM]
    return on


def prose(text: str, caption: bool = False) -> None:
    """An explanatory paragraph (``caption``: a caption): shown normally, left out in presentation mode."""
    if presenting():
        return
    (st.caption if caption else st.markdown)(text)


__all__ = ["BASE_PX", "CSS", "KEY", "PARAM", "presentation_toggle", "presenting", "prose"]
