"""Trajectory page defects a teacher would see on a projector: layer order, the animation's slider and legend, raw
subscripts, a cut side table."""

import pytest
from experiment_helpers import record_cnn_experiment
from page_helpers import chart, page, texts

from know_core.api import method_label


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    """(runs dir, run id): a tiny experiment of the simple CNN (layers 0, 3, 6, 9, 12, 14), S = 4, scales ×2 ×4."""
    root = tmp_path_factory.mktemp("runs-cnn")
    return root, record_cnn_experiment(root)


def test_natural_key_reads_numbers_as_numbers():
    from know_core.api import natural_key

    assert sorted(["0", "12", "14", "3", "6", "9"], key=natural_key) == ["0", "3", "6", "9", "12", "14"]
    assert sorted(["layer10.0", "layer2.1", "layer2.0", "fc"], key=natural_key) == [
        "fc", "layer2.0", "layer2.1", "layer10.0"]


def test_layers_are_listed_in_numeric_order(monkeypatch, cnn_run):
    root, run_id = cnn_run
    at = page(monkeypatch, root, "trajectory", run=run_id)
    assert not at.exception, at.exception
    options = at.selectbox(key="traj-layer").options
    assert [o.split(" ")[0] for o in options[1:]] == ["0", "3", "6", "9", "12", "14"]  # stored order: 0, 12, 14, 3 …


def test_animation_slider_spans_the_runs_real_scales(monkeypatch, cnn_run):
    root, run_id = cnn_run
    at = page(monkeypatch, root, "trajectory", run=run_id, view="Animation")
    assert not at.exception, at.exception
    spec = chart(at, "Animation")
    labels = [s["label"] for s in spec["layout"]["sliders"][0]["steps"]]
    assert labels == ["stage 3", "stage 2", "stage 1", "stage 0", "×2", "×4"]  # the control film ran to ×8 before
    assert len(spec["frames"]) == len(labels)
    last = {t["name"]: len(t["x"]) for t in spec["frames"][-1]["data"]}
    assert last["TaskVector"] == 3 and last["oracle (really trained on more data)"] == 3  # Θ0, ×2, ×4 by the end
    assert spec["layout"]["showlegend"] and all(t["x"] for t in spec["data"])  # every legend entry from frame one


@pytest.mark.parametrize("view, title", [("2-D", "one PCA plane"), ("3-D", "3-D PCA"), ("Animation", "Animation")])
def test_legend_sits_below_the_plot_clear_of_the_colour_bar(monkeypatch, cnn_run, view, title):
    root, run_id = cnn_run
    at = page(monkeypatch, root, "trajectory", run=run_id, view=view)
    layout = chart(at, title)["layout"]
    legend, colorbar = layout.get("legend", {}), layout["coloraxis"]["colorbar"]
    assert legend.get("orientation") == "h"  # a vertical legend on the right sits on the colour bar
    assert legend.get("yanchor") == "top" and legend.get("y", 1) <= 0  # below the plot: its full width stays
    assert colorbar.get("x", 0) >= 1 and colorbar.get("xanchor") == "left"  # right of the plot, not over it
    if view == "Animation":
        controls = layout["updatemenus"] + layout["sliders"]
        assert all(c.get("y", 0) >= 1 and c.get("yanchor") == "bottom" for c in controls)  # above, not in the legend


@pytest.mark.parametrize("view", ["2-D", "Animation"])
def test_no_raw_subscripts_on_the_page(monkeypatch, cnn_run, view):
    root, run_id = cnn_run
    at = page(monkeypatch, root, "trajectory", run=run_id, view=view)
    raw = [t for t in texts(at) if "_{" in t]
    assert not raw, raw
    names = [t["name"] for t in chart(at, "Forgetting panel")["data"]]
    assert "forgetting film Θ0 → Θ₃" in names  # S − 1 = 3, computed


def test_side_table_shows_every_column(monkeypatch, cnn_run):
    import json

    root, run_id = cnn_run
    at = page(monkeypatch, root, "trajectory", run=run_id)
    (table,) = [d for d in at.dataframe if "cosine" in d.value.columns]
    config = json.loads(table.proto.columns)
    widths = [config[c].get("width") for c in table.value.columns]
    assert all(isinstance(w, int) for w in widths), config  # "stretch" alone cut the last column
    assert sum(widths) <= 700  # fits a projector's 1024-px page beside the sidebar (the table sits under the plot)
    assert list(table.value.columns) == ["method", "scale", "cosine", "rel. error"]
    labels = list(table.value["method"])
    assert method_label("control") in labels  # methods by their labels, not registry keys
    assert config["method"]["width"] >= 7 * max(len(m) for m in labels)  # about 7 px a character: none is cut


def test_the_page_opens_with_the_films_headline(monkeypatch, cnn_run):
    from page_helpers import order

    from know_core.api import film_headline, load_experiment

    root, run_id = cnn_run
    at = page(monkeypatch, root, "trajectory", run=run_id)
    sentence = film_headline(load_experiment(root, run_id))
    assert sentence.startswith("The film ")
    shown = [text for kind, text in order(at) if text]
    assert shown[0] == "Trajectory" and shown[1].replace("\\", "") == sentence  # before any detail


@pytest.mark.parametrize("name", ["compare", "scaling", "known", "present"])
def test_no_raw_subscripts_on_the_other_pages(monkeypatch, cnn_run, name):
    """Θ_{−k}, C_k and θ_{-4} read as LaTeX source on a projector: every page writes them as Θ₋ₖ, Cₖ, θ₋₄."""
    root, run_id = cnn_run
    at = page(monkeypatch, root, name, run=run_id, runs=run_id, step="4")
    assert not at.exception, at.exception
    raw = [t for t in texts(at) if "_{" in t or "C_k" in t]
    assert not raw, raw
