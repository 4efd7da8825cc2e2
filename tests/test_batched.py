import copy
import dataclasses

import pytest
import torch
from conftest import tiny_config

from know_core.common.errors import Cancelled, ConfigError
from know_core.engine.batched import batchable, run_forgetting_batched, run_seeds
from know_core.engine.config import AUGMENTS, OptimConfig, PretrainConfig
from know_core.engine.forgetting import run_forgetting
from know_core.engine.stacked import StackedNet
from know_core.engine.train import Hooks, Members, _step, augment_batch, make_optimizer
from know_core.models import create_model


def digits(**changes):
    base = dict(dataset="digits", model="simple_cnn", stages=3, stage_budget="steps:6", d0_fraction=0.5,
                carry_optimizer=False, warm="auto", optim=OptimConfig(batch_size=64, lr=0.003),
                pretrain=PretrainConfig(max_epochs=6, patience=1))
    base.update(changes)
    return tiny_config(**base)


def seeds(cfg, n=3):
    return [dataclasses.replace(cfg, seed=s) for s in range(n)]


@pytest.fixture(autouse=True)
def one_thread():
    """Bit-for-bit holds for single-threaded kernels (what the suite runs: conftest sets OMP_NUM_THREADS=1): with more
    threads the grouped/batched kernels split their sums across threads differently from each member's own kernels."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_same_runs(loop, batched):
    """Every member's run is its own loop run bit for bit: weights of every stage of every film, and so every discrete
    outcome. No tolerance: a last-bit difference is a different kernel (Adam amplifies it to ~1e-4 within 50 steps,
    past any tolerance that would still catch a real defect), and it is what made this test flaky across CPUs (the
    loop's augmented batches used to reach the convolutions channels-last, the stacked members NCHW). Checked bit for
    bit also under ATEN_CPU_CAPABILITY=avx2 / default, ONEDNN_MAX_CPU_ISA=AVX2 / SSE41, MKL_ENABLE_INSTRUCTIONS=SSE4_2
    (other CPUs' kernels, emulated)."""
    for (a, _), (b, timings) in zip(loop, batched):
        assert len(a.pretrain_history) == len(b.pretrain_history)
        assert a.pretrain_history == b.pretrain_history
        films = [(a.states, b.states)] + [(x.states, y.states) for x, y in ((a.warm, b.warm), (a.control, b.control))
                                           if x is not None or y is not None]
        for film, (fa, fb) in enumerate(films):
            assert len(fa) == len(fb)
            for sa, sb in zip(fa, fb):
                for key in sa:
                    diff = float((sb[key] - sa[key]).abs().max())
                    assert torch.equal(sb[key], sa[key]), f"film {film}, {key}: batched off by up to {diff:.3g}"
        assert a.verdict() == b.verdict() and a.forgot == b.forgot
        assert a.stage_steps == b.stage_steps and a.cap_hit == b.cap_hit and a.stage_sizes == b.stage_sizes
        assert timings["batched_members"] == len(batched)


def test_batched_equals_the_loop_with_members_stopping_at_different_epochs():
    cfgs = seeds(digits())
    loop = [run_forgetting(c) for c in cfgs]
    assert len({len(t.pretrain_history) for t, _ in loop}) > 1  # early stopping really differs between the members
    assert loop[0][0].warm is not None  # warm oracles and control film are compared too
    assert_same_runs(loop, run_forgetting_batched(cfgs))


def test_release_protocol_converge_budget_and_augmentation():
    """Adam carried from pre-training (members at different step counts), a converge budget that stops each member
    on its own plateau, and per-member augmentation draws."""
    cfgs = seeds(digits(carry_optimizer=True, stage_budget="converge:3", augment="shift", warm="off",
                        optim=OptimConfig(optimizer="adamw", weight_decay=0.01, lr=0.003, batch_size=64)))
    assert_same_runs([run_forgetting(c) for c in cfgs], run_forgetting_batched(cfgs))


def test_mlp_with_sgd_epoch_budget_and_plateau_pretraining():
    cfgs = seeds(tiny_config(optim=OptimConfig(optimizer="sgd", lr=0.05, batch_size=32), warm="off",
                             pretrain=PretrainConfig(max_epochs=4, patience=1, until="plateau")))
    assert_same_runs([run_forgetting(c) for c in cfgs], run_forgetting_batched(cfgs))


@pytest.mark.parametrize("kind", AUGMENTS[1:])
@pytest.mark.parametrize("channels", [1, 3])
def test_augmented_batches_keep_the_plain_layout(kind, channels):
    """Convolutions pick their kernels by memory layout: an augmented batch must reach the net in the layout a plain
    one has (NCHW strides), or the run's sums (and the batched path's agreement with it) depend on the layout."""
    x = torch.randn(5, channels, 8, 8)
    out = augment_batch(x, kind, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.stride() == x.stride()


@pytest.mark.parametrize("optimizer, mask", [("adam", None), ("adamw", [True, False, True]),
                                             ("sgd", [False, True, True])])
def test_one_optimiser_over_the_members_is_torch_per_member(optimizer, mask):
    """The loop's step over K stacked members, some masked (stopped): each active member moves as its own net with its
    own torch optimiser would, and a masked member's weights and optimiser state stay put."""
    cfg = OptimConfig(optimizer=optimizer, weight_decay=0.1, lr=0.01, momentum=0.9)
    models = [create_model("mlp", (1, 4, 4), 3) for _ in range(3)]
    own = [copy.deepcopy(m) for m in models]
    x, y = torch.randn(40, 1, 4, 4), torch.randint(0, 3, (40,))
    m = Members(models, x, y, 8, net=StackedNet(models[0]), seeds=[0, 1, 2])
    opt, own_opts = make_optimizer(models, cfg), [make_optimizer(o, cfg) for o in own]
    active = m.all_active() if mask is None else torch.tensor(mask)
    frozen = [[p.detach().clone() for p in models[k].parameters()] for k in range(3) if not active[k]]
    for i in range(3):
        idx = torch.stack([torch.arange(8) + 8 * ((i + k) % 5) for k in range(3)])
        _step(m, opt, idx, [torch.Generator()] * 3, active)
        for k in active.nonzero().flatten().tolist():
            own_opts[k].zero_grad()
            torch.nn.functional.cross_entropy(own[k](x[idx[k]]), y[idx[k]]).backward()
            own_opts[k].step()
    for k in range(3):
        for p, q in zip(models[k].parameters(), own[k].parameters()):
            assert torch.equal(p, q)
    for leaf in m.params:  # the optimiser's state is stacked: a masked member's slices never left their fresh zeros
        state = [v for v in opt.state[leaf].values() if torch.is_tensor(v) and v.dim() and v.shape[0] == 3]
        assert state and all(bool(v[k].any()) == bool(active[k]) for v in state for k in range(3))
    still = [list(models[k].parameters()) for k in range(3) if not active[k]]
    assert all(torch.equal(p, q) for ps, qs in zip(still, frozen) for p, q in zip(ps, qs))


@pytest.mark.parametrize("model, shape", [("simple_cnn", (1, 8, 8)), ("simple_cnn", (1, 28, 28)), ("mlp", (1, 8, 8))])
def test_a_stacked_step_is_each_members_own_bit_for_bit(model, shape):
    """Logits and gradients equal to each member's own net, also where oneDNN's grouped kernels differ (28×28)
    and for a one-sample last batch."""
    members = [create_model(model, shape, 10) for _ in range(3)]
    net = StackedNet(members[0])
    params = net.stack([m.state_dict() for m in members], torch.device("cpu"))
    for batch in (13, 1):
        x, y = torch.randn(3, batch, *shape), torch.randint(0, 10, (3, batch))
        logits = net(params, x)
        loss = torch.stack([torch.nn.functional.cross_entropy(logits[j], y[j]) for j in range(3)])
        grads = torch.autograd.grad(loss.sum(), params)
        for j, m in enumerate(members):
            own = m(x[j])
            assert torch.equal(logits[j], own)
            own_grads = torch.autograd.grad(torch.nn.functional.cross_entropy(own, y[j]), list(m.parameters()))
            assert all(torch.equal(g[j], o) for g, o in zip(grads, own_grads))


def test_batchable_reasons():
    cfgs = seeds(digits())
    assert batchable(cfgs)[0]
    assert "single run" in batchable(cfgs[:1])[1]
    ok, reason = batchable([cfgs[0], dataclasses.replace(cfgs[1], r=0.4)])
    assert not ok and "differ in more than the seed (r)" in reason
    ok, reason = batchable(seeds(digits(model="small_resnet")))
    assert not ok and "BatchNorm" in reason
    with pytest.raises(ConfigError, match="cannot be batched"):
        run_forgetting_batched(seeds(digits(model="small_resnet")))


def test_run_seeds_says_which_path_it_took():
    cfgs = seeds(tiny_config(warm="off"), 2)
    runs, how = run_seeds(cfgs)
    assert how.startswith("batched") and len(runs) == 2
    runs, how = run_seeds(cfgs[:1])
    assert how.startswith("one run at a time") and len(runs) == 1


def test_progress_and_cancel():
    events = []
    run_forgetting_batched(seeds(digits(stages=2)), Hooks(progress=events.append))
    phases = [e.phase for e in events]
    assert {"pre-training", "forgetting", "warm oracles", "control film"} <= set(phases)
    assert all(0 < e.done <= e.total for e in events)
    assert any(e.metrics.get("members") == 3 for e in events if e.phase == "pre-training")
    calls = []
    hooks = Hooks(progress=calls.append, should_stop=lambda: len(calls) >= 5)
    with pytest.raises(Cancelled):
        run_forgetting_batched(seeds(digits()), hooks)
    assert len(calls) == 5
