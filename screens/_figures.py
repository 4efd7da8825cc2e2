"""Figures on a page: full width, an export menu (interactive HTML; PNG where kaleido works), the scale axis, and
large fonts in presentation mode (:mod:`screens._presentation`)."""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import textwrap
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from screens._presentation import presenting

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
    if presenting():  # a lecture: large type, and no export menu under the figure
        return st.plotly_chart(large_fonts(fig), width="stretch", key=key, config=PLOT_CONFIG, **chart)
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


PRESENT_FONT = 20  # plotly's base font in presentation mode (its default is 12); titles and ticks scale from it


TITLE_CHARS = 42  # characters of a 24-px figure title that fit a projector's 1024-px page beside the sidebar


def large_fonts(fig, size: int = PRESENT_FONT):
    """The figure with type readable from the back of a lecture hall (presentation mode), and room for it: a taller
    plot and margins that fit the larger titles. Changes ``fig`` in place and returns it."""
    height, top = fig.layout.height, fig.layout.margin.t
    fig.update_layout(font=dict(size=size), title_font=dict(size=round(size * 1.2)), legend_font=dict(size=size),
                      hoverlabel=dict(font_size=size), height=max(height or 0, 600), margin_t=max(top or 0, 100))
    title = fig.layout.title.text
    if title and "<br>" not in title and len(title) > TITLE_CHARS:  # plotly never wraps a title: a projector cut it
        lines = textwrap.wrap(title, TITLE_CHARS)
        fig.update_layout(title_text="<br>".join(lines),
                          margin_t=fig.layout.margin.t + (len(lines) - 1) * round(size * 1.6))
    if fig.layout.legend.yref == "container" and fig.layout.showlegend is not False:  # legend_below's legend
        # A legend below the plot grows with the type: give it its own rows of room (about two entries a row on a
        # projector's 1024 px), or it eats the plot (seen with three runs on Compare: a plot 60 px tall).
        # The first two rows come out of the plot; the figure grows by the rest, so a short legend keeps one figure
        # per screen and a long one cannot squeeze the plot below ~300 px.
        names = [t.name for t in fig.data if t.name and t.showlegend is not False]
        per_row = 2 if names and max(len(n) for n in names) <= 16 else 1  # "method · run" entries take a row each
        rows = math.ceil(len(names) / per_row)
        row = round(size * 1.5)
        fig.update_layout(height=fig.layout.height + max(rows - 2, 0) * row,
                          margin_b=(fig.layout.margin.b or 80) + rows * row)
    fig.update_annotations(font_size=size)  # subplot titles and reference-line labels
    fig.update_xaxes(title_font_size=size, tickfont_size=round(size * 0.9))
    fig.update_yaxes(title_font_size=size, tickfont_size=round(size * 0.9))
    return fig


def legend_below(fig, **legend: Any):
    """A horizontal legend in the figure's bottom margin, under the axis title: it wraps instead of being cut, and
    never sits on the tick labels or the subplot titles."""
    fig.update_layout(legend=dict(orientation="h", yref="container", yanchor="bottom", y=0.0, xanchor="left", x=0.0,
                                  **legend))
    return fig


def reference_line(fig, y: float, label: str, colour: str = "black", dash: str = "dot", width: float = 1):
    """A horizontal reference line (keep Θ1 at 1, naive's accuracy, scratch's) named in the legend, not written on
    the plot: a label inside the plotting area sat on the bars and points near the line's right end."""
    fig.add_hline(y=y, line=dict(color=colour, dash=dash, width=width))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=label, hoverinfo="skip",
                             line=dict(color=colour, dash=dash, width=width)))
    return fig
