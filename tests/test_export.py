"""PNG export of dashboard figures: kaleido drives Debian's Chromium, offline."""

import shutil

import pytest


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed (scripts/setup.sh does)")
def test_figures_export_as_png():
    import plotly.graph_objects as go

    from screens._common import kaleido_ready

    assert kaleido_ready()
    png = go.Figure(go.Scatter(y=[1, 3, 2])).to_image(format="png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
