"""``import --eval module:function``: the user's loss and accuracy per snapshot, computed in a child process with a
time limit and stored as the run's metrics.csv; a hook that raises, hangs or returns garbage is refused with one line
and nothing is recorded."""

from __future__ import annotations

import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import torch
from test_import import base_states, cli, film_of, nothing_recorded, refused, run_id_of

from know_core.imports.film import open_imported_run
from know_core.store.runstore import RunStore

HOOKS = '''
import time
import torch

def model():
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))

def score(state):
    """The network's own loss and accuracy on fixed data, loaded strictly (the state dict is the real thing)."""
    net = model()
    net.load_state_dict(state, strict=True)
    net.eval()
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=gen), torch.randint(0, 2, (32,), generator=gen)
    with torch.no_grad():
        out = net(x)
    print("hello from the hook")  # must not be read as an answer
    return {"loss": torch.nn.functional.cross_entropy(out, y), "acc": float((out.argmax(1) == y).float().mean())}

def boom(state):
    raise ValueError("no data here")

def hang(state):
    time.sleep(60)

def a_list(state):
    return [1, 2]

def nan_loss(state):
    return {"loss": float("nan"), "acc": 0.5}

def acc_percent(state):
    return {"loss": 1.0, "acc": 87}

not_callable = 3
'''


@pytest.fixture
def hooks_module(tmp_path, monkeypatch) -> str:
    folder = tmp_path / "userpkg"
    folder.mkdir()
    (folder / "myhooks.py").write_text(textwrap.dedent(HOOKS))
    monkeypatch.chdir(folder)  # the child imports the hook's module from the current folder, as python -m does
    return "myhooks"


def expected_metrics(states: list[dict]) -> list[tuple[float, float]]:
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=gen), torch.randint(0, 2, (32,), generator=gen)
    out = []
    for state in states:
        net.load_state_dict(state, strict=True)
        net.eval()
        with torch.no_grad():
            logits = net(x)
        out.append((float(torch.nn.functional.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())))
    return out


def test_the_eval_hook_fills_in_loss_and_accuracy_per_stage(capsys, tmp_path, hooks_module):
    runs = tmp_path / "runs"
    states = base_states(3)
    code, out, err = cli(capsys, "import", *film_of(tmp_path / "f", states), "--kind", "forgetting",
                         "--eval", f"{hooks_module}:score", "--eval-timeout", "30", "--runs-dir", runs, "--quiet")
    assert code == 0, err
    assert "hello from the hook" not in out
    run, _, film = open_imported_run(RunStore(runs), run_id_of(out))
    assert [m["stage"] for m in film.metrics] == [0, 1, 2]
    for got, (loss, acc) in zip(film.metrics, expected_metrics(states)):
        assert got["source_loss"] == pytest.approx(loss, rel=1e-5) and got["source_acc"] == pytest.approx(acc)
    assert run.read_json("layout.json")["eval"] == f"{hooks_module}:score"


def test_an_import_without_a_hook_has_no_metrics(capsys, tmp_path):
    runs = tmp_path / "runs"
    code, out, err = cli(capsys, "import", *film_of(tmp_path / "f", base_states(2)), "--kind", "training",
                         "--runs-dir", runs, "--quiet")
    assert code == 0, err
    assert open_imported_run(RunStore(runs), run_id_of(out))[2].metrics is None


@pytest.mark.parametrize("fn, words", [
    ("boom", "raised on Θ0: ValueError: no data here"),
    ("a_list", "returned [1, 2]; expected a dict"),
    ("nan_loss", "returned loss=nan; expected a finite number"),
    ("acc_percent", "returned acc=87.0; expected a fraction in [0, 1]"),
    ("not_callable", "myhooks:not_callable is not a function"),
    ("missing", "cannot load myhooks:missing: AttributeError"),
])
def test_a_hook_that_raises_or_returns_garbage_is_refused(capsys, tmp_path, hooks_module, fn, words):
    runs = tmp_path / "runs"
    line = refused(capsys, runs, "import", *film_of(tmp_path / "f", base_states(2)), "--kind", "forgetting",
                   "--eval", f"{hooks_module}:{fn}", "--eval-timeout", "30")
    assert words in line and line.startswith("error:"), line
    assert nothing_recorded(runs)


def test_a_hook_that_hangs_is_stopped_at_its_time_limit(capsys, tmp_path, hooks_module):
    runs = tmp_path / "runs"
    start = time.monotonic()
    line = refused(capsys, runs, "import", *film_of(tmp_path / "f", base_states(2)), "--kind", "forgetting",
                   "--eval", f"{hooks_module}:hang", "--eval-timeout", "1")
    assert "on Θ0 ran past its time limit of 1 s" in line, line
    assert time.monotonic() - start < 30
    assert nothing_recorded(runs)


@pytest.mark.parametrize("spec, timeout, words", [
    ("no colon", "5", "expected module:function"),
    ("os:path:join", "5", "expected module:function"),
    ("myhooks:score", "0", "--eval-timeout 0.0"),
])
def test_a_malformed_hook_or_timeout_is_refused(capsys, tmp_path, spec, timeout, words):
    runs = tmp_path / "runs"
    line = refused(capsys, runs, "import", *film_of(tmp_path / "f", base_states(2)), "--kind", "forgetting",
                   "--eval", spec, "--eval-timeout", timeout)
    assert words in line, line
    assert nothing_recorded(runs)


def test_no_temporary_snapshot_is_left_behind(capsys, tmp_path, hooks_module, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)
    refused(capsys, tmp_path / "runs", "import", *film_of(tmp_path / "f", base_states(2)), "--kind", "forgetting",
            "--eval", f"{hooks_module}:boom")
    assert list(Path(tmp_path / "tmp").iterdir()) == []
