import pytest

from know_core.common.errors import ConfigError
from know_core.engine.config import ForgetConfig, OptimConfig, PretrainConfig, from_dict, to_dict, with_overrides


@pytest.mark.parametrize("changes, message", [
    ({"r": 0}, "r must be strictly between 0 and 1"),
    ({"r": 1.0}, "r must be strictly between 0 and 1"),
    ({"r": -0.5}, "r must be"),
    ({"stages": 1}, "stages must be an integer >= 2"),
    ({"stage_budget": "steps:0"}, "stage_budget 'steps:0'.*between 1 and"),
    ({"stage_budget": "steps:abc"}, "stage_budget 'steps:abc'.*not a whole number"),
    ({"stage_budget": "epochs:-1"}, "stage_budget 'epochs:-1'"),
    ({"stage_budget": "converge:x"}, "stage_budget 'converge:x'"),
    ({"stage_budget": "sometimes"}, "unknown kind 'sometimes'"),
    ({"augment": "rotate"}, "augment must be one of"),
    ({"warm": "maybe"}, "warm must be one of"),
    ({"optim": OptimConfig(weight_decay=-1)}, "optim.weight_decay must be >= 0"),
    ({"optim": OptimConfig(weight_decay=float("nan"))}, "optim.weight_decay must be >= 0"),
    ({"pretrain": PretrainConfig(until="forever")}, "pretrain.until"),
    ({"seed": -1}, "seed must be"),
    ({"d0_fraction": 1.5}, "d0_fraction"),
    ({"device": "tpu"}, "device must be"),
    ({"optim": OptimConfig(lr=-1)}, "optim.lr must be a positive"),
    ({"optim": OptimConfig(batch_size=0)}, "optim.batch_size"),
    ({"optim": OptimConfig(optimizer="lion")}, "optim.optimizer"),
    ({"pretrain": PretrainConfig(max_epochs=0)}, "pretrain.max_epochs"),
])
def test_bad_values_name_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        ForgetConfig(**changes).validate()


def test_round_trip_and_overrides():
    cfg = ForgetConfig(r=0.3, optim=OptimConfig(lr=0.01))
    again = from_dict(ForgetConfig, to_dict(cfg))
    assert again == cfg
    changed = with_overrides(cfg, {"optim.lr": 0.1, "stages": 7})
    assert changed.optim.lr == 0.1 and changed.stages == 7 and changed.r == 0.3
    with pytest.raises(ConfigError, match="unknown config key 'optim.nope'"):
        with_overrides(cfg, {"optim.nope": 1})
    with pytest.raises(ConfigError, match="unknown config key 'pretrain.bogus'"):
        from_dict(ForgetConfig, {"pretrain": {"bogus": 1}})


def test_budget_grammar():
    from know_core.engine.stages import parse_budget

    assert str(parse_budget("epochs:1")) == "epochs:1" and parse_budget("steps:250").amount == 250
    assert parse_budget("converge").kind == "converge" and parse_budget("converge:7").amount == 7
    assert parse_budget("steps:10").planned_steps(1000, 100) == 10
    assert parse_budget("epochs:2").planned_steps(1000, 100) == 20


def test_legacy_epochs_key_reads_as_a_budget():
    """Run folders recorded before stage budgets say ``epochs: N``; they still load, as ``epochs:N``."""
    cfg = from_dict(ForgetConfig, {"epochs": 3, "r": 0.5})
    assert cfg.stage_budget == "epochs:3"


def test_protocols_resolve_and_unknown_is_refused():
    from know_core.engine.protocols import apply_protocol, describe

    cfg = ForgetConfig(dataset="digits", optim=OptimConfig(batch_size=32))
    release = apply_protocol(cfg, "release")
    assert release.stage_budget == "epochs:1" and release.carry_optimizer and release.protocol == "release"
    equal = apply_protocol(cfg, "equal-steps")
    assert equal.stage_budget.kind == "steps" and not equal.carry_optimizer
    # 3 epochs of D0 in steps: D0 is the pool minus validation, at batch 32
    from know_core.data import load_dataset
    from know_core.engine.forgetting import source_split

    n0 = source_split(load_dataset("digits"), cfg).n0
    assert equal.stage_budget == f"steps:{3 * -(-n0 // 32)}"
    assert "protocol equal-steps" in describe(equal) and "steps:" in describe(equal)
    with pytest.raises(ConfigError, match="unknown protocol 'fast'"):
        apply_protocol(cfg, "fast")


def test_stage_budget_is_typed_inside_and_text_outside():
    """Parsed once where text comes in (construction, from_dict, overrides); written back as the text it was given,
    so a recorded config.json (and its hash) is unchanged; a bad budget is refused at the door, naming the field."""
    from know_core.engine.budget import StageBudget

    cfg = from_dict(ForgetConfig, {"stage_budget": "converge"})
    assert isinstance(cfg.stage_budget, StageBudget) and (cfg.stage_budget.kind, cfg.stage_budget.amount) == \
        ("converge", 50)
    assert to_dict(cfg)["stage_budget"] == "converge" and from_dict(ForgetConfig, to_dict(cfg)) == cfg
    changed = with_overrides(cfg, {"stage_budget": "steps:9"})
    assert changed.stage_budget.kind == "steps" and changed.stage_budget.amount == 9
    assert to_dict(ForgetConfig())["stage_budget"] == "epochs:1"
    with pytest.raises(ConfigError, match="stage_budget 'steps:x'"):
        with_overrides(cfg, {"stage_budget": "steps:x"})


def test_configs_cross_processes_as_json_checked_on_arrival():
    from know_core.engine.config import from_json, to_json
    from know_core.experiment.spec import ExperimentConfig, preset

    cfg = preset("paper")
    assert from_json(ExperimentConfig, to_json(cfg)) == cfg
    bad = to_json(ExperimentConfig(scales=[3.0]))
    with pytest.raises(ConfigError, match="scale 3 is not a power of 1/r = 2"):
        from_json(ExperimentConfig, bad)
    with pytest.raises(ConfigError, match="unit config is not a JSON config"):
        from_json(ExperimentConfig, "{", "unit config")


def test_one_scale_step_rule():
    from know_core.engine.config import scale_of_steps, steps_of_scale

    cfg = ForgetConfig(r=0.5)
    assert [cfg.steps_of(s) for s in (2.0, 4.0, 8.0)] == [1, 2, 3] and cfg.scale_of(3) == 8.0
    assert steps_of_scale(scale_of_steps(2, 0.3), 0.3) == 2
    with pytest.raises(ConfigError, match="scale 3 is not a power of 1/r = 2"):
        cfg.steps_of(3.0)


def test_release_protocol_does_not_load_the_dataset(monkeypatch):
    import know_core.data as data
    from know_core.engine.protocols import apply_protocol

    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: pytest.fail("release needs no data"))
    cfg = apply_protocol(ForgetConfig(dataset="cifar100", stage_budget="steps:5"), "release")
    assert cfg.stage_budget == "epochs:1" and cfg.protocol == "release"
