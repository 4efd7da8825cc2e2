"""Predictors against closed forms: exact sequences they must reproduce, degenerate windows they must survive,
the rollout contract, input checks, and KNOWN's module, fast path and checkpoint format (no official files needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import know_core.predictors as registry
from know_core.predictors import (
    KNOWN,
    Option,
    Predictor,
    available_predictors,
    get_predictor,
    load_known_checkpoint,
    predict_fast,
    register_predictor,
    save_known_checkpoint,
)
from know_core.predictors import known as known_module


def random_known(seed: int = 0, input_mode: str = "raw") -> KNOWN:
    torch.manual_seed(seed)
    return KNOWN(input_mode).eval()


def known_predictor(input_mode: str = "raw"):
    nets = {g: random_known(i, input_mode) for i, g in enumerate(("conv", "fc", "bias"))}
    return get_predictor("known", weights=nets)


def exponential(a: torch.Tensor, b: torch.Tensor, q: float, length: int, dtype=torch.float64) -> torch.Tensor:
    """Rows a + b·q^j for j = 0 … length−1 (column 0 is the most-forgotten stage)."""
    j = torch.arange(length, dtype=torch.float64)
    return (a.double().unsqueeze(1) + b.double().unsqueeze(1) * q ** j).to(dtype)


def trajectories(rows: int = 300, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    theta0 = torch.randn(rows, 1, generator=gen) * 0.05
    steps = torch.randn(rows, 4, generator=gen) * 0.004
    return (theta0 + torch.cat([torch.zeros(rows, 1), steps.cumsum(1)], 1)).flip(1).contiguous()


# --- registry ---------------------------------------------------------------------------------------------------

def test_registry_lists_and_builds_every_predictor():
    assert available_predictors() == ["naive", "taskvector", "expfit", "known", "nino_mlp", "nino"]
    for name in ("naive", "taskvector", "expfit"):
        predictor = get_predictor(name)
        assert predictor.name == name and name in predictor.describe()


def test_registry_unknown_name_and_option():
    with pytest.raises(ValueError, match=r"unknown predictor 'oracle'.*naive, taskvector, expfit, known"):
        get_predictor("oracle")
    with pytest.raises(ValueError, match="no option 'lam'"):
        get_predictor("naive", lam=2.0)
    with pytest.raises(ValueError, match="lam"):
        get_predictor("taskvector", lam=float("nan"))


class FailsOnRow(Predictor):
    """Naive, except that a chunk containing row ``bad`` raises: exercises the chunked, threaded rollout."""

    name = "fails_on_row"
    chunk_rows = 100

    def __init__(self, bad: int = -1) -> None:
        self.bad = bad

    def step(self, window, group):
        if bool((window[:, 0] == self.bad).any()):
            raise RuntimeError(f"row {self.bad} reached")
        return window[:, -1].clone()


def test_registering_a_new_predictor(monkeypatch):
    monkeypatch.setattr(registry._REGISTRY, "_entries", dict(registry._REGISTRY._entries))
    register_predictor("fails_on_row", FailsOnRow, label="Fails on a row", options=[Option("bad", "int", -1, "row")])
    assert available_predictors()[-1] == "fails_on_row"
    assert isinstance(get_predictor("fails_on_row", bad=3), FailsOnRow)
    entry = registry.predictor_entry("fails_on_row")
    assert (entry.label, entry.min_stages, entry.option("bad").kind) == ("Fails on a row", 2, "int")
    with pytest.raises(ValueError, match="already registered"):
        register_predictor("fails_on_row", type(get_predictor("naive")))


def test_registry_carries_labels_colours_options_and_window_length():
    entries = {e.name: e for e in registry.predictor_entries()}
    assert list(entries)[:4] == ["naive", "taskvector", "expfit", "known"]
    assert entries["known"].min_stages == 5 and entries["expfit"].min_stages == 3
    assert all(e.colour and e.label for e in entries.values())
    assert entries["taskvector"].option("lam").kind == "float"
    with pytest.raises(ValueError, match=r"q_max must lie in \[1, inf\]"):
        get_predictor("expfit", q_max=0.5)


def test_chunked_rollout_reraises_worker_errors_and_restores_threads():
    threads = torch.get_num_threads()
    window = torch.arange(5000, dtype=torch.float32).unsqueeze(1).repeat(1, 3)
    assert torch.equal(FailsOnRow().predict(window, steps=2), window[:, :2])
    with pytest.raises(RuntimeError, match="row 4321 reached"):
        FailsOnRow(4321).predict(window)
    assert torch.get_num_threads() == threads


# --- input checks -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["naive", "taskvector", "expfit"])
def test_non_finite_window_names_the_parameter(name):
    window = trajectories(10)
    window[2, 1] = window[4, 0] = window[7, 3] = float("nan")
    window[8, 2] = float("inf")
    with pytest.raises(ValueError, match=r"parameter 'conv1.weight' \(3 NaN, 1 Inf; first at row 2\)"):
        get_predictor(name).predict(window, param_name="conv1.weight")


def test_known_rejects_nan_too():
    window = trajectories(4)
    window[1, 4] = float("nan")
    with pytest.raises(ValueError, match="non-finite value in window for parameter 'fc.bias'"):
        known_predictor().predict(window, group="bias", param_name="fc.bias")


def test_shape_dtype_steps_and_group_checks():
    tv, ef = get_predictor("taskvector"), get_predictor("expfit")
    with pytest.raises(ValueError, match="2-D float"):
        tv.predict(torch.zeros(5))
    with pytest.raises(ValueError, match="2-D float"):
        tv.predict(torch.zeros(3, 5, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        tv.predict([[0.0, 1.0]])
    with pytest.raises(ValueError, match="needs at least 2"):
        tv.predict(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="needs at least 3"):
        ef.predict(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="5"):
        known_predictor().predict(torch.zeros(3, 4))
    for steps in (0, 1.0, True):
        with pytest.raises(ValueError, match="steps"):
            tv.predict(torch.zeros(3, 5), steps=steps)
    with pytest.raises(ValueError, match="group 'norm'"):
        tv.predict(torch.zeros(3, 5), group="norm")
    assert tv.predict(torch.zeros(0, 5), steps=2).shape == (0, 2)


# --- closed forms -------------------------------------------------------------------------------------------------

def test_naive_repeats_theta0():
    window = trajectories(20)
    out = get_predictor("naive").predict(window, steps=3)
    assert torch.equal(out, window[:, -1:].expand(-1, 3))


@pytest.mark.parametrize("lam", [1.0, 0.5])
def test_taskvector_on_linear_sequences(lam):
    a, b = torch.randn(50, dtype=torch.float64), torch.randn(50, dtype=torch.float64)
    window = a.unsqueeze(1) + b.unsqueeze(1) * torch.arange(5, dtype=torch.float64)
    out = get_predictor("taskvector", lam=lam).predict(window, steps=3)
    increments = (lam ** torch.arange(1, 4, dtype=torch.float64)).cumsum(0)  # each step is λ × the previous one
    expected = a.unsqueeze(1) + b.unsqueeze(1) * (4 + increments)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("q", [0.3, 0.5, 0.7, 0.9, 0.999, 1.001, 1.1, 1.5, 2.0])
@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("length", [3, 5, 7])
def test_expfit_exact_on_exponentials(q, sign, length):
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(64, generator=gen, dtype=torch.float64) * 0.1
    b = sign * (torch.rand(64, generator=gen, dtype=torch.float64) * 0.05 + 0.01)
    window = exponential(a, b, q, length)
    out = get_predictor("expfit").predict(window, steps=3)
    expected = exponential(a, b, q, length + 3)[:, length:]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-11)


@pytest.mark.parametrize("q", [0.5, 0.8])
def test_expfit_exact_in_both_orientations(q):
    """Decaying towards Θ0 is q < 1; the mirrored trajectory (growing towards Θ0) is q' = 1/q > 1."""
    a, b = torch.full((8,), 0.3, dtype=torch.float64), torch.linspace(-0.2, 0.2, 8, dtype=torch.float64) + 0.01
    forward = exponential(a, b, q, 6)
    mirrored = exponential(a, b, q, 6).flip(1)
    ef = get_predictor("expfit")
    torch.testing.assert_close(ef.predict(forward[:, :5]), forward[:, 5:], rtol=0, atol=1e-12)
    torch.testing.assert_close(ef.predict(mirrored[:, :5]), mirrored[:, 5:], rtol=0, atol=1e-12)


def test_expfit_float32_to_float_precision_and_q_max_option():
    a, b = torch.randn(100) * 0.05, torch.rand(100) * 0.02 + 0.001
    window = exponential(a, b, 0.6, 6)
    out = get_predictor("expfit").predict(window[:, :5].float())
    assert out.dtype == torch.float32
    assert float((out.double() - window[:, 5:]).abs().max()) < 1e-6
    steep = exponential(a, b, 3.0, 6)
    torch.testing.assert_close(get_predictor("expfit", q_max=4.0).predict(steep[:, :5]), steep[:, 5:],
                               rtol=1e-12, atol=1e-12)
    capped = get_predictor("expfit").predict(steep[:, :5])[:, 0]
    assert bool((capped.abs() < steep[:, 5].abs()).all())  # growth limited to q = 2


def test_expfit_linear_limit_is_the_straight_line():
    a, b = torch.randn(20, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
    line = a.unsqueeze(1) + b.unsqueeze(1) * torch.arange(8, dtype=torch.float64)
    torch.testing.assert_close(get_predictor("expfit").predict(line[:, :5], steps=3), line[:, 5:],
                               rtol=0, atol=1e-10)


def test_expfit_degenerate_windows_follow_the_documented_rule():
    window = torch.tensor([
        [0.2, 0.2, 0.2, 0.2, 0.2],        # constant: θ0
        [0.1, 0.3, 0.1, 0.3, 0.1],        # alternating steps: TaskVector step
        [0.1, 0.1, 0.2, 0.3, 0.4],        # one zero step: TaskVector step
        [0.0, 0.0, 0.0, 0.0, 1e-30],      # tiny
        [1e30, -1e30, 1e30, -1e30, 1e30],  # huge and alternating
        [0.0, 1e-30, 2e-30, 1e30, 3e38],  # exploding ratio, capped
    ], dtype=torch.float32)
    out = get_predictor("expfit").predict(window, steps=3)
    assert bool(torch.isfinite(out).all())
    assert torch.equal(out[0], torch.full((3,), 0.2))
    torch.testing.assert_close(out[1], torch.tensor([-0.1, -0.3, -0.5]))
    torch.testing.assert_close(out[2, 0], torch.tensor(0.5))
    noisy = get_predictor("expfit").predict(torch.randn(20_000, 5) * 1e-3, steps=3)
    assert bool(torch.isfinite(noisy).all())


# --- rollout --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["naive", "taskvector", "expfit", "known"])
def test_rollout_equals_repeated_single_steps(name):
    predictor = known_predictor() if name == "known" else get_predictor(name)
    window = trajectories(200, seed=3)
    rolled = predictor.predict(window, steps=3, group="conv")
    manual = window
    for j in range(3):
        nxt = predictor.predict(manual, steps=1, group="conv")
        torch.testing.assert_close(rolled[:, j:j + 1], nxt, rtol=0, atol=1e-7)
        manual = torch.cat([manual[:, 1:], nxt], dim=1)


# --- KNOWN module ---------------------------------------------------------------------------------------------

def test_known_parameter_count_and_shapes():
    net = random_known()
    assert sum(p.numel() for p in net.parameters()) == 9425
    window = trajectories(7)
    assert net(window).shape == (7,) and net.delta(window).shape == (7,)
    longer = torch.cat([torch.randn(7, 3), window], dim=1)
    torch.testing.assert_close(net(longer), net(window), rtol=0, atol=0)
    with pytest.raises(ValueError, match="KNOWN needs 5 stages"):
        net(window[:, 1:])


@pytest.mark.parametrize("input_mode", ["raw", "range"])
@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_fast_path_matches_eager(input_mode, scale):
    net = random_known(1, input_mode)
    window = trajectories(5000, seed=4) * scale
    with torch.no_grad():
        eager = net(window)
    for chunk in (None, 7, 4096):
        fast = predict_fast(net, window, chunk_rows=chunk)
        torch.testing.assert_close(fast, eager, rtol=1e-5, atol=1e-5 * scale)


def test_exponent_clamp_keeps_extreme_windows_finite():
    """Inputs far outside the training range drive e⊙h past the clamp: no overflow, and both paths saturate alike."""
    net = random_known(2)
    window = torch.randn(2000, 5) * 1e4
    with torch.no_grad():
        eager = net.delta(window)
    fast = predict_fast(net, window) - window[:, -1]
    assert bool(torch.isfinite(eager).all()) and bool(torch.isfinite(fast).all())
    saturated = eager.abs() > 0.999
    assert int(saturated.sum()) > 100
    torch.testing.assert_close(fast[saturated], eager[saturated], rtol=0, atol=2e-3)


def test_known_is_trainable():
    net = random_known().train()
    loss = (net(trajectories(64)) - 0.01).abs().mean()
    loss.backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in net.parameters())


def test_range_mode_is_scale_invariant():
    predictor = known_predictor("range")
    window = trajectories(400, seed=5)
    base = predictor.predict(window, steps=2, group="fc")
    for c in (1e-3, 7.5):
        torch.testing.assert_close(predictor.predict(window * c, steps=2, group="fc"), base * c,
                                   rtol=1e-4, atol=1e-6 * c)
    flat = predictor.predict(torch.full((3, 5), 0.25), group="fc")
    torch.testing.assert_close(flat, torch.full((3, 1), 0.25))


# --- checkpoints ----------------------------------------------------------------------------------------------

def test_checkpoint_round_trip_is_bit_identical(tmp_path: Path):
    nets = {"conv": random_known(0), "fc": random_known(1, "range"), "bias": random_known(2)}
    nets["fc"].out_scale.fill_(0.25)
    path = save_known_checkpoint(tmp_path / "k.safetensors", nets, {"runs": 166, "note": "unit test"})
    assert [p.name for p in tmp_path.iterdir()] == ["k.safetensors"]  # no temporary file left behind
    loaded, meta = load_known_checkpoint(path)
    assert meta == {"runs": 166, "note": "unit test"}
    window = trajectories(100)
    for group, net in nets.items():
        assert loaded[group].input_mode == net.input_mode
        for key, value in net.state_dict().items():
            assert torch.equal(loaded[group].state_dict()[key], value), key
        assert torch.equal(predict_fast(loaded[group], window), predict_fast(net, window))
    via_registry = get_predictor("known", weights=path)
    torch.testing.assert_close(via_registry.predict(window, group="fc")[:, 0], predict_fast(nets["fc"], window),
                               rtol=0, atol=0)


def test_checkpoint_damage_is_named(tmp_path: Path):
    from safetensors.torch import load_file, save_file

    path = save_known_checkpoint(tmp_path / "k.safetensors", {"conv": random_known()}, {})
    tensors = load_file(path)
    del tensors["conv.d_stream.gate.weight"]
    save_file(tensors, tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match=r"missing key 'conv.d_stream.gate.weight'"):
        load_known_checkpoint(tmp_path / "missing.safetensors")
    tensors["conv.d_stream.gate.weight"] = torch.zeros(64, 9)
    save_file(tensors, tmp_path / "shape.safetensors")
    with pytest.raises(ValueError, match=r"'conv.d_stream.gate.weight' has shape \(64, 9\), expected \(64, 8\)"):
        load_known_checkpoint(tmp_path / "shape.safetensors")
    save_file({"norm.head.bias": torch.zeros(1)}, tmp_path / "prefix.safetensors")
    with pytest.raises(ValueError, match="unexpected key 'norm.head.bias'"):
        load_known_checkpoint(tmp_path / "prefix.safetensors")
    with pytest.raises(ValueError, match="no network for group 'fc'"):
        get_predictor("known", weights=path).predict(trajectories(3), group="fc")


def test_missing_default_checkpoint_explains_how_to_make_it(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(known_module, "DEFAULT_CHECKPOINT", tmp_path / "known_default.safetensors")
    with pytest.raises(FileNotFoundError, match=r"default KNOWN checkpoint is missing.*python -m know_core metatrain"):
        get_predictor("known")
    with pytest.raises(FileNotFoundError, match="KNOWN_Conv.h5"):
        get_predictor("known", weights=tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["naive", "taskvector", "expfit", "known"])
def test_cuda_matches_cpu(name):
    predictor = known_predictor() if name == "known" else get_predictor(name)
    window = trajectories(10_000, seed=6)
    on_gpu = predictor.predict(window.cuda(), steps=3, group="conv")
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), predictor.predict(window, steps=3, group="conv"),
                               rtol=1e-5, atol=1e-6)


def test_opt_in_predictors_stay_out_of_the_default_methods():
    """A predictor registered with ``default_method: False`` (NiNo's WNN+, until it is measured beside KNOWN) is
    offered everywhere but run only when asked for, so the presets' methods, and their cost, stay as they were."""
    from know_core.experiment.spec import ExperimentConfig, preset
    from know_core.predictors import default_predictors

    assert {"nino_mlp", "nino"} <= set(available_predictors()) and not {"nino_mlp", "nino"} & set(default_predictors())
    assert ExperimentConfig().methods == default_predictors() == ["naive", "taskvector", "expfit", "known"]
    assert "nino_mlp" not in preset("quick").methods
    assert ExperimentConfig(methods=["naive", "nino_mlp"]).methods == ["naive", "nino_mlp"]
