"""The method table: every name a results row carries has a label and a colour, variants included, and the
cross-field check of a method's window against the film length (S) is made once, in ExperimentConfig.validate."""

from __future__ import annotations

import dataclasses

import pytest

from know_core.common.errors import ConfigError
from know_core.engine.config import ForgetConfig
from know_core.experiment import methods
from know_core.experiment.spec import ExperimentConfig, available_presets, preset


def test_every_row_name_has_a_label_and_a_colour():
    for name in ("naive", "taskvector", "expfit", "known", "known-official", "oracle", "oracle-warm", "scratch",
                 "control", "trajectory"):
        style = methods.style(name)
        assert style.label and style.colour.startswith("#"), name
    assert methods.colour("shrink:expfit+dc") == methods.colour("expfit")
    assert methods.label("shrink:expfit+dc") == "shrinkage control of ExpFit + drift correction"
    assert methods.colour("someone-else") == methods.colour("someone-else")  # unknown: a stable colour, no KeyError
    assert methods.label("someone-else") == "someone-else"  # an unknown plugin name reads as itself


def test_short_labels_drop_the_explanation_for_axis_categories():
    """An axis category ("control film ×4") takes the label without the parenthesis a legend gives; a label without
    one (a predictor, KNOWN (official weights)) is its own short label, variants keep their words."""
    assert methods.label("control").startswith(methods.short_label("control") + " (")
    assert methods.short_label("oracle-warm") == "warm oracle" and methods.short_label("oracle") == "oracle"
    for name in ("taskvector", "known-official", "naive", "someone-else", "shrink:expfit+dc"):
        assert methods.short_label(name) == methods.label(name), name
    assert methods.short_label("shrink:control+dc") == "shrinkage control of control film + drift correction"


def test_predicted_methods_and_their_order_come_from_the_registry():
    assert methods.predicted_methods() == ["taskvector", "expfit", "known", "nino_mlp", "nino", "known-official"]
    names = ["control", "known+dc", "expfit", "taskvector", "zzz"]
    assert sorted(names, key=methods.method_order) == ["taskvector", "expfit", "known+dc", "control", "zzz"]


@pytest.mark.parametrize("change", [dict(methods=["naive", "known"]), dict(methods=["naive"], official_known="/x")])
def test_a_film_shorter_than_a_window_is_refused_naming_the_field(change):
    cfg = ExperimentConfig(source=ForgetConfig(stages=4), **change)
    with pytest.raises(ConfigError, match=r"source.stages = 4 is too short for method 'known(-official)?', which "
                                          r"needs a film of at least 5 stages"):
        cfg.validate()
    dataclasses.replace(cfg, source=ForgetConfig(stages=5)).validate()


def test_presets_are_registered_with_their_help():
    assert list(available_presets()) == ["quick", "digits", "standard", "paper", "dg"]
    assert "Fashion-MNIST" in available_presets()["quick"]
    with pytest.raises(ConfigError, match="unknown preset 'huge'; available: quick, digits, standard, paper"):
        preset("huge")


def test_a_backtest_the_film_is_too_short_for_gets_a_note_from_the_metadata():
    import torch

    from know_core.engine.forgetting import Trajectory
    from know_core.experiment.seed import _backtests
    from know_core.predictors import get_predictor

    states = [{"w": torch.full((3, 2), 1.0 + 0.1 * s), "b": torch.full((3,), 0.5 - 0.05 * s)} for s in range(5)]
    traj = Trajectory(states, {"w": "fc", "b": "bias"}, [0] * 5, [0.0] * 5, [0.0] * 5, [0.0] * 5)
    rows = _backtests(traj, {"known": get_predictor("known"), "taskvector": get_predictor("taskvector")})
    assert {"method": "known", "note": "its backtest hides Θ0, so it needs source.stages >= 6; this film has 5"} in rows
    assert {r["group"] for r in rows if r["method"] == "taskvector"} == {"fc", "bias"}
