"""Device placement without a GPU: every registered predictor and one training step of every registered model run on
PyTorch's ``meta`` device, where tensors have shapes but no storage. A tensor built on the CPU and mixed with the
model's or the window's (the bug class that breaks on CUDA) fails there as it would on a GPU."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from know_core.engine.config import OptimConfig
from know_core.engine.train import make_optimizer
from know_core.models import available_models, create_model
from know_core.predictors import available_predictors, get_predictor, predict_fast
from know_core.predictors.known_net import KNOWN

META = torch.device("meta")


@pytest.mark.parametrize("name", available_predictors())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_predictor_rolls_out_on_the_meta_device(name, dtype):
    predictor = get_predictor(name)  # default options; for known, the shipped checkpoint
    if getattr(predictor, "whole_model", False):
        pytest.skip(f"{name} predicts whole networks (predict_film), not windows; its device path: test_nino_gnn")
    window = torch.empty(300, 6, dtype=dtype, device=META)
    out = predictor.predict(window, steps=3, group="conv")
    assert out.device == META and out.shape == (300, 3) and out.dtype == dtype


def test_known_fast_path_stays_on_the_networks_device():
    net = KNOWN().to(META)
    out = predict_fast(net, torch.empty(5000, 5, device=META), chunk_rows=4096)
    assert out.device == META and out.shape == (5000,)


def test_meta_windows_are_still_checked_for_shape():
    with pytest.raises(ValueError, match="needs at least 5"):
        get_predictor("known").predict(torch.empty(3, 4, device=META))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("name", sorted(available_models()))
def test_every_model_takes_a_training_step_on_the_meta_device(name, optimizer):
    model = create_model(name, (3, 16, 16), 10).to(META).train()
    opt = make_optimizer(model, dataclasses.replace(OptimConfig(), optimizer=optimizer))
    x, y = torch.empty(4, 3, 16, 16, device=META), torch.zeros(4, dtype=torch.long, device=META)
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    assert loss.device == META
    assert all(p.device == META and p.grad is not None and p.grad.device == META for p in model.parameters())
    assert all(t.device == META for state in opt.state.values() for t in state.values()
               if isinstance(t, torch.Tensor) and t.ndim > 0)
