import pytest

from know_core.config import ForgetConfig, OptimConfig, PretrainConfig, from_dict, to_dict, with_overrides
from know_core.errors import ConfigError


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
    from know_core.stages import parse_budget

    assert str(parse_budget("epochs:1")) == "epochs:1" and parse_budget("steps:250").amount == 250
    assert parse_budget("converge").kind == "converge" and parse_budget("converge:7").amount == 7
    assert parse_budget("steps:10").planned_steps(1000, 100) == 10
    assert parse_budget("epochs:2").planned_steps(1000, 100) == 20


def test_legacy_epochs_key_reads_as_a_budget():
    """Run folders recorded before stage budgets say ``epochs: N``; they still load, as ``epochs:N``."""
    cfg = from_dict(ForgetConfig, {"epochs": 3, "r": 0.5})
    assert cfg.stage_budget == "epochs:3"


def test_protocols_resolve_and_unknown_is_refused():
    from know_core.protocols import apply_protocol, describe

    cfg = ForgetConfig(dataset="digits", optim=OptimConfig(batch_size=32))
    release = apply_protocol(cfg, "release")
    assert release.stage_budget == "epochs:1" and release.carry_optimizer and release.protocol == "release"
    equal = apply_protocol(cfg, "equal-steps")
    assert equal.stage_budget.kind == "steps" and not equal.carry_optimizer
    # 3 epochs of D0 in steps: D0 is the pool minus validation, at batch 32
    from know_core.data import load_dataset
    from know_core.forgetting import source_split

    n0 = source_split(load_dataset("digits"), cfg).n0
    assert equal.stage_budget == f"steps:{3 * -(-n0 // 32)}"
    assert "protocol equal-steps" in describe(equal) and "steps:" in describe(equal)
    with pytest.raises(ConfigError, match="unknown protocol 'fast'"):
        apply_protocol(cfg, "fast")
