import pytest
import torch

from know_core.common.errors import ConfigError
from know_core.models import available_models, create_model, param_groups


@pytest.mark.parametrize("name", ["simple_cnn", "small_resnet", "mlp"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_models_are_sized_from_the_dataset(name, shape):
    model = create_model(name, shape, 7)
    assert model(torch.randn(3, *shape)).shape == (3, 7)


def test_simple_cnn_is_the_official_collector_net():
    model = create_model("simple_cnn", (1, 28, 28), 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 32] and all(c.kernel_size == (3, 3) for c in convs)
    assert [layer.out_features for layer in linears] == [64, 10]


def test_every_parameter_has_its_know_group():
    model = create_model("small_resnet", (1, 8, 8), 10)
    groups = param_groups(model)
    assert set(groups) == {n for n, _ in model.named_parameters()}
    params = dict(model.named_parameters())
    for name, group in groups.items():
        if group == "conv":
            assert params[name].ndim > 2
        elif group == "fc":
            assert params[name].ndim == 2
        elif group == "bias":
            assert params[name].ndim == 1 and ".bn" not in name
    assert groups["stem.1.weight"] == "norm" and groups["stem.1.bias"] == "norm"
    assert groups["head.bias"] == "bias" and groups["head.weight"] == "fc"
    assert set(param_groups(create_model("simple_cnn", (1, 8, 8), 10)).values()) == {"conv", "fc", "bias"}


def test_unknown_model_lists_the_known_ones():
    assert "simple_cnn" in available_models()
    with pytest.raises(ConfigError, match="unknown model 'vgg'.*simple_cnn"):
        create_model("vgg", (1, 8, 8), 10)
