import pytest

from know_core.config import ForgetConfig, OptimConfig, PretrainConfig, from_dict, to_dict, with_overrides
from know_core.errors import ConfigError


@pytest.mark.parametrize("changes, message", [
    ({"r": 0}, "r must be strictly between 0 and 1"),
    ({"r": 1.0}, "r must be strictly between 0 and 1"),
    ({"r": -0.5}, "r must be"),
    ({"stages": 1}, "stages must be an integer >= 2"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
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
