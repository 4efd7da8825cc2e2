import pytest
import torch
from conftest import tiny_config

from know_core.common.errors import Cancelled, ConfigError
from know_core.common.hooks import Hooks
from know_core.engine.forgetting import Trajectory, run_forgetting
from know_core.engine.windows import from_vectors, to_windows


def test_trajectory_shape_and_measurements(tiny_cfg):
    traj, timings = run_forgetting(tiny_cfg)
    assert len(traj.states) == tiny_cfg.stages == len(traj.source_acc) == len(traj.train_loss)
    assert traj.stage_sizes[1:] == [int(traj.stage_sizes[0] * 0.5 ** s) for s in range(1, tiny_cfg.stages)]
    assert all(0 <= a <= 1 for a in traj.source_acc)
    assert 1 <= len(traj.pretrain_history) <= tiny_cfg.pretrain.max_epochs
    assert set(traj.groups.values()) == {"fc", "bias"}
    # every stage moved the weights
    for before, after in zip(traj.states, traj.states[1:]):
        assert any(not torch.equal(before[k], after[k]) for k in before)
    assert timings["pretrain_s"] > 0 and timings["forgetting_s"] > 0


def test_same_seed_gives_identical_trajectory():
    a, _ = run_forgetting(tiny_config(model="simple_cnn"))
    b, _ = run_forgetting(tiny_config(model="simple_cnn"))
    c, _ = run_forgetting(tiny_config(model="simple_cnn", seed=1))
    for sa, sb in zip(a.states, b.states):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.source_acc == b.source_acc
    assert not all(torch.equal(a.states[-1][k], c.states[-1][k]) for k in a.states[-1])


def test_early_stopping_stops_before_the_limit():
    traj, _ = run_forgetting(tiny_config(pretrain=tiny_config().pretrain.__class__(max_epochs=200, patience=2)))
    assert len(traj.pretrain_history) < 200


@pytest.mark.parametrize("changes, message", [
    ({"stages": 8}, "fewer than one batch"),
    ({"optim": tiny_config().optim.__class__(batch_size=2), "stages": 9}, "fewer than the 4 classes"),
])
def test_stage_too_small_is_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        run_forgetting(tiny_config(**changes))


def test_cancel_stops_promptly():
    calls = []
    hooks = Hooks(progress=lambda e: calls.append(e), should_stop=lambda: len(calls) >= 3)
    with pytest.raises(Cancelled):
        run_forgetting(tiny_config(), hooks)
    assert len(calls) == 3


def test_forgetting_verdict():
    def traj(accs):
        return Trajectory([{}] * len(accs), {}, [1] * len(accs), [0.0] * len(accs), accs, [0.0] * len(accs))

    assert traj([0.90, 0.88, 0.85]).forgot
    assert not traj([0.772, 0.785, 0.783, 0.784, 0.786]).forgot  # docs/method.md: the under-trained Θ0
    assert "NO forgetting" in traj([0.8, 0.81]).verdict()


def test_windows_round_trip_and_order(tiny_cfg):
    traj, _ = run_forgetting(tiny_cfg)
    windows = to_windows(traj.states, traj.groups)
    assert set(windows) == {"fc", "bias"}
    n_fc = sum(v.numel() for k, v in traj.states[0].items() if traj.groups.get(k) == "fc")
    assert windows["fc"].shape == (n_fc, tiny_cfg.stages)
    first_fc = next(k for k in traj.states[0] if traj.groups.get(k) == "fc")
    # column 0 is the most-forgotten stage, the last column Θ0
    assert torch.equal(windows["fc"][: traj.states[0][first_fc].numel(), -1], traj.states[0][first_fc].flatten())
    assert torch.equal(windows["fc"][: traj.states[0][first_fc].numel(), 0], traj.states[-1][first_fc].flatten())
    for col, state in zip(range(tiny_cfg.stages), reversed(traj.states)):
        rebuilt = from_vectors(traj.states[0], traj.groups, {g: w[:, col] for g, w in windows.items()})
        assert all(torch.equal(rebuilt[k], state[k]) for k in state)
