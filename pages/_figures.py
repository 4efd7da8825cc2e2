"""Figures on a page: full width, an export menu (interactive HTML; PNG where kaleido works), the scale axis."""

from __future__ import annotations

import importlib.util
import os
import shutil
from typing import Any

import streamlit as st

PLOT_CONFIG = {"displaylogo": False}


def kaleido_ready() -> bool:
    """PNG export needs the ``kaleido`` package and a Chromium (Debian's, found through BROWSER_PATH)."""
    if importlib.util.find_spec("kaleido") is None:
        return False
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        os.environ.setdefault("BROWSER_PATH", chromium)
    return chromium is not None


def show_figure(fig, key: str, **chart: Any) -> Any:
    """Draw a Plotly figure full-width with an export menu (interactive HTML; PNG where kaleido works); ``chart``
    goes to ``st.plotly_chart`` (``on_select="rerun"`` makes it return the selection)."""
    event = st.plotly_chart(fig, width="stretch", key=key, config=PLOT_CONFIG, **chart)
    with st.popover("Export figure", icon=":material/download:"):
        st.download_button("Interactive HTML", data=lambda: fig.to_html(include_plotlyjs=True, full_html=True),
                           file_name=f"{key}.html", mime="text/html", key=f"{key}-html", on_click="ignore")
        if kaleido_ready():
            st.download_button("PNG image", data=lambda: fig.to_image(format="png", scale=2),
                               file_name=f"{key}.png", mime="image/png", key=f"{key}-png", on_click="ignore")
        else:
            st.caption("PNG export needs the `kaleido` package (pip install kaleido) and Chromium; "
                       "HTML keeps the figure interactive.")
    return event


def scale_axis(scales: list[float]) -> dict[str, Any]:
    """A log2 x-axis with ×1, ×2, ×4 … ticks."""
    ticks = sorted(set(scales))
    return dict(type="log", tickvals=ticks, ticktext=[f"×{s:g}" for s in ticks],
                title="scaling factor: virtual source data ÷ |D0| (log scale)")
