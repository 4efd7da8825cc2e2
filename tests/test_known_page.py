"""KNOWN page defects: SI-prefixed ticks on the flat-window chart, the recipe as raw JSON, a meta-training curve
flattened by one spike, and no headline."""

import json

import pytest
from page_helpers import chart, order, page, texts

SPIKE = 14.88


@pytest.fixture
def card(monkeypatch, tmp_path):
    """A checkpoint card with one divergent epoch (val_rel_l1 = 14.88 among values near 0.8-1.3), as the shipped
    default's conv · raw curve has; the page reads it instead of the real card."""
    import know_core.api

    curve = [{"epoch": e, "val_rel_l1": v} for e, v in enumerate([1.0, 1.09, 1.28, 1.44, 1.3, 1.65, SPIKE, 1.22], 1)]
    kept = [{"epoch": e, "val_rel_l1": 1.0 - 0.02 * e} for e in range(1, 9)]
    data = {"curves": {"conv": {"raw": curve, "range": kept}}, "validation": {"conv": {"mode": "range"}},
            "data": {"folder": "meta/films"},
            "recipe": {"batch_size": 1024, "lr": 0.001, "modes": ["raw", "range"], "target": "backward",
                       "budgets": {"epochs": 36}}}
    path = tmp_path / "known_default.safetensors"
    path.with_suffix(".json").write_text(json.dumps(data))
    monkeypatch.setattr(know_core.api, "DEFAULT_CHECKPOINT", path)
    return data


def test_flat_window_ticks_are_plain_numbers(monkeypatch, tmp_path, card):
    at = page(monkeypatch, tmp_path, "known")
    assert not at.exception, at.exception
    layout = chart(at, "flat window")["layout"]
    for axis in ("xaxis", "yaxis"):
        fmt = layout[axis].get("tickformat", "")
        assert fmt and "s" not in fmt, (axis, fmt)  # no tickformat: Plotly writes 3e-14 as "30f"


def test_recipe_is_a_table_not_json(monkeypatch, tmp_path, card):
    at = page(monkeypatch, tmp_path, "known")
    assert not [t for t in texts(at) if '{"' in t or "': " in t]  # no JSON or dict text anywhere
    (recipe,) = [d.value for d in at.dataframe if "setting" in d.value.columns]
    rows = dict(zip(recipe["setting"], recipe["value"]))
    assert rows["batch size"] == "1024" and rows["lr"] == "0.001" and rows["modes"] == "raw, range"
    assert rows["budgets · epochs"] == "36"


def test_one_spike_does_not_flatten_the_meta_training_curve(monkeypatch, tmp_path, card):
    at = page(monkeypatch, tmp_path, "known")
    spec = chart(at, "during meta-training")
    top = spec["layout"]["yaxis"]["range"][1]
    assert 1.0 < top < 3  # the other epochs (0.84 … 1.65) fill the plot
    (marked,) = [t for t in spec["data"] if t["name"].startswith("off the scale")]
    assert marked["x"] == [7] and marked["text"] == ["14.9"]  # the clipped epoch is marked with its value
    raw = next(t for t in spec["data"] if t["name"] == "conv · raw")
    assert max(raw["y"]) <= top and raw["customdata"][6] == SPIKE  # drawn at the edge; hover keeps the value


def test_the_page_opens_with_what_known_does(monkeypatch, tmp_path, card):
    at = page(monkeypatch, tmp_path, "known")
    shown = [text.replace("\\", "") for kind, text in order(at) if text]  # Markdown escapes removed
    assert shown[0] == "KNOWN"
    assert shown[1].startswith("KNOWN reads a weight's last five values and predicts the next: on these 5 windows")
    assert "median |Δ|" in shown[1] and "straight continuation" in shown[1]


def test_the_transfer_table_reads_at_one_precision(monkeypatch, tmp_path):
    """It showed 1, 0.9976 and 1.5334 side by side; both error columns now read with three decimals, like the CLI."""
    at = page(monkeypatch, tmp_path, "known")
    assert not at.exception, at.exception
    (table,) = [d for d in at.dataframe if "backtest" in d.value.columns]
    config = json.loads(table.proto.columns)
    assert all(config[c].get("type_config", {}).get("format") == "%.3f" for c in ("backtest", "warm")), config
