"""A forgetting film recorded on the user's own network and data (issue 19 point 3): ``know_core.api.record_forgetting``
on an unregistered nn.Module and a TensorDataset, ``forget --model-factory/--data-factory``, and each bad input
refused with one line and nothing recorded."""

from __future__ import annotations

import base64
import json
import runpy
import textwrap

import numpy as np
import pytest
import torch
from page_helpers import charts, page, texts
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from know_core.api import (
    forget_scaling_headline,
    load_film_result,
    load_forget_run,
    load_seed_weights,
    method_label,
    record_forgetting,
    stored_headline,
)
from know_core.cli import main
from know_core.common.errors import ConfigError, DataError, RunStoreError
from know_core.data.resident import materialise
from know_core.jobs.lifecycle import check_run, resume_run
from know_core.store.runstore import RunStore


class TwoLayer(nn.Module):
    """The user's own network: registered nowhere."""

    def __init__(self, inputs: int = 6, classes: int = 3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(inputs, 24), nn.LayerNorm(24), nn.ReLU())
        self.head = nn.Linear(24, classes)

    def forward(self, x):
        return self.head(self.body(x))


def blobs(n: int, seed: int, classes: int = 3) -> TensorDataset:
    """Separable Gaussian blobs in 6-D: learnable in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    centres = torch.randn(classes, 6, generator=torch.Generator().manual_seed(7)) * 2
    return TensorDataset(centres[y] + torch.randn(n, 6, generator=g), y)


FAST = dict(r=0.5, stages=3, stage_budget="epochs:2", batch_size=16, pretrain_epochs=4, device="cpu")


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("user-runs")
    model = TwoLayer()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run_id = record_forgetting(model, blobs(480, 0), blobs(150, 1), runs_dir=root, name="mine",
                               settings={"d0_fraction": 0.5}, **FAST)
    return root, run_id, model, before


def test_a_user_model_records_a_stored_film_with_its_verdict(user_run):
    root, run_id, model, before = user_run
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the user's module is untouched
    run = check_run(RunStore(root), run_id)  # every file checksummed, config and trajectory validated
    assert run.kind == "forget"
    cfg = run.config()
    assert (cfg.model, cfg.dataset) == ("user:TwoLayer", "user:TensorDataset")
    forget = load_forget_run(root, run_id)
    traj = forget.trajectory
    assert len(traj.states) == 3 and traj.stage_sizes == [216, 108, 54]  # 480 − 10 % validation, half of it as D0
    assert set(traj.states[0]) == set(model.state_dict())
    assert traj.groups == {"body.0.weight": "fc", "body.0.bias": "bias", "body.1.weight": "norm",
                           "body.1.bias": "norm", "head.weight": "fc", "head.bias": "bias"}
    assert not torch.equal(traj.states[0]["head.weight"], before["head.weight"])  # Θ0 was pre-trained from it
    assert traj.report is not None and 0 <= traj.report.p_value <= 1 and traj.report.pattern
    assert traj.warm is not None and traj.warm.sizes == [432]  # the pool's other half: one superset, ×2
    assert traj.control is not None and len(traj.control.states) == 2
    summary = RunStore(root).open(run_id).read_json("summary.json")
    assert summary["verdict"] == traj.verdict() and summary["forgetting"]["p_value"] == traj.report.p_value


def test_the_trajectory_page_opens_a_user_run(monkeypatch, user_run):
    root, run_id, *_ = user_run
    result = load_film_result(root, run_id)
    assert result.seeds == [0] and result.config.scales == [2.0] and result.rows == []
    sw = load_seed_weights(root, run_id, 0)
    assert len(sw.stages) == 3 and list(sw.warm) == [2.0] and len(sw.control) == 2 and sw.predictions == {}
    for view in ("2-D", "Animation", "Per-weight curves"):
        at = page(monkeypatch, root, "trajectory", run=run_id, view=view)
        assert not at.exception, (view, at.exception)
        shown = texts(at)
        assert any("A forget run" in t and "TwoLayer" in t and "TensorDataset" in t for t in shown), view
        assert any(t.startswith("The film") for t in shown)  # the headline: the verdict in a sentence
        names = [t.get("name") for spec in [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
                 for t in spec["data"]]
        assert "forgetting film Θ0 → Θ₂" in names  # the forgetting panel drew this run's three stages
        if view == "2-D":
            assert any(str(n).startswith("warm oracles") for n in names) and any(
                str(n).startswith("control film") for n in names)


def test_a_user_run_cannot_be_resumed_from_its_name(tmp_path):
    run_id = record_forgetting(TwoLayer(), blobs(200, 0), runs_dir=tmp_path, warm="off", **FAST)
    store = RunStore(tmp_path)
    store.mark(run_id, "failed", "for the test")
    with pytest.raises(RunStoreError, match="your own model or data"):
        resume_run(store, run_id)


def test_a_custom_loss_trains_and_a_bad_loss_is_refused(tmp_path):
    seen = []

    def smoothed(logits, y):
        seen.append(1)
        return nn.functional.cross_entropy(logits, y, label_smoothing=0.1)

    run_id = record_forgetting(TwoLayer(), blobs(200, 0), runs_dir=tmp_path, loss=smoothed, warm="off", **FAST)
    assert len(seen) > 10 and load_forget_run(tmp_path, run_id).config.dataset == "user:TensorDataset"
    with pytest.raises(ConfigError, match="finite scalar"):
        record_forgetting(TwoLayer(), blobs(200, 0), runs_dir=tmp_path / "b",
                          loss=lambda z, y: nn.functional.cross_entropy(z, y, reduction="none"), **FAST)
    assert not (tmp_path / "b").exists() or RunStore(tmp_path / "b").list_runs() == []


class Pairs(Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@pytest.mark.parametrize("items, message", [
    ([(torch.zeros(6), 0), (torch.zeros(6),)], r"train_set\[1\] must be an \(input tensor, class index\) pair"),
    ([(torch.zeros(6), 0), ([0.0] * 6, 1)], r"train_set\[1\]: the input must be a tensor, got list.*ToTensor"),
    ([(torch.zeros(6), 0), (torch.zeros(7), 1)], r"train_set\[1\]: input of shape \(7,\), but item 0's is \(6,\)"),
    ([(torch.zeros(6), 0), (torch.zeros(6), 0.5)], r"train_set\[1\]: the label must be a class index"),
    ([(torch.zeros(6), 0), (torch.zeros(6), -1)], r"train_set\[1\]: the label must be a class index"),
])
def test_items_that_are_not_tensor_class_pairs_are_named(items, message):
    with pytest.raises(DataError, match=message):
        materialise(Pairs(items), "train_set")


def test_data_too_big_for_memory_says_the_limit():
    with pytest.raises(DataError, match=r"train_set: 1,000 items of shape 3×32×32 need 0.01 GiB resident, more than "
                                        r"the limit of 0.00 GiB"):
        materialise(Pairs([(torch.zeros(3, 32, 32), 0)] * 1000), "train_set", limit=1 << 20)


@pytest.mark.parametrize("model, message", [
    (nn.Linear(5, 3), "the model fails on a batch of 2 inputs of shape 6"),
    (nn.Linear(6, 2), r"to \(2, 2\); it must give \(2, 3\) logits"),
    ("not a module", "model must be a torch.nn.Module"),
])
def test_a_model_that_does_not_fit_the_data_is_refused_before_any_run(tmp_path, model, message):
    with pytest.raises(ConfigError, match=message):
        record_forgetting(model, blobs(200, 0), runs_dir=tmp_path, **FAST)
    assert RunStore(tmp_path).list_runs() == []


FACTORIES = textwrap.dedent("""
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset

    def model():
        return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))

    def data():
        g = torch.Generator().manual_seed(0)
        y = torch.arange(300) % 3
        return TensorDataset(torch.randn(300, 6, generator=g) + y[:, None].float(), y), None

    def broken():
        raise RuntimeError("no GPU here")

    def number():
        return 3

    def three():
        return 1, 2, 3
""")


@pytest.fixture
def factories(tmp_path, monkeypatch):
    (tmp_path / "userfactories.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path / "runs"


def test_forget_with_factories_records_a_run(factories, capsys):
    code = main(["forget", "--model-factory", "userfactories:model", "--data-factory", "userfactories:data",
                 "--stages", "3", "--batch-size", "16", "--pretrain-epochs", "3", "--device", "cpu", "--quiet",
                 "--runs-dir", str(factories)])
    out = capsys.readouterr().out
    assert code == 0
    assert "user:userfactories:data / user:userfactories:model" in out
    assert "protocol equal-steps: stage budget steps:" in out  # the default protocol, resolved on this data's D0
    (info,) = RunStore(factories).list_runs()
    assert info.status == "done" and info.config["model"] == "user:userfactories:model"
    assert load_forget_run(factories, info.id).trajectory.report is not None


@pytest.mark.parametrize("argv, message", [
    (["--model-factory", "userfactories:broken", "--data-factory", "userfactories:data"],
     "--model-factory 'userfactories:broken' raised RuntimeError: no GPU here"),
    (["--model-factory", "userfactories:number", "--data-factory", "userfactories:data"],
     "returned a int, not a torch.nn.Module"),
    (["--model-factory", "nosuchmodule:model", "--data-factory", "userfactories:data"],
     "cannot import module 'nosuchmodule' (ModuleNotFoundError"),
    (["--model-factory", "userfactories:missing", "--data-factory", "userfactories:data"],
     "module 'userfactories' has no 'missing'"),
    (["--model-factory", "userfactories", "--data-factory", "userfactories:data"], "must look like module:function"),
    (["--model-factory", "userfactories:model", "--data-factory", "userfactories:three"], "returned 3 items"),
    (["--model-factory", "userfactories:model", "--data-factory", "userfactories:number"],
     "returned a int as the train set, not a torch Dataset"),
    (["--model-factory", "userfactories:model"], "--model-factory and --data-factory go together"),
    (["--model-factory", "userfactories:model", "--data-factory", "userfactories:data", "--model", "mlp"],
     "--model names a registered model"),
])
def test_bad_factories_exit_2_with_one_line_and_record_nothing(factories, capsys, argv, message):
    code = main(["forget", *argv, "--quiet", "--runs-dir", str(factories)])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not factories.exists() or RunStore(factories).list_runs() == []


def test_the_resnet18_example_runs_quick(tmp_path, capsys):
    """examples/resnet18_fakedata.py, shrunken (--quick: 64 FakeData images of 3×16×16): a torchvision ResNet-18 film
    recorded through the library and stored whole."""
    from conftest import REPO

    example = runpy.run_path(str(REPO / "examples" / "resnet18_fakedata.py"))
    run_id = example["main"](["--quick", "--device", "cpu", "--runs-dir", str(tmp_path)])
    assert f"recorded run {run_id}" in capsys.readouterr().out
    run = check_run(RunStore(tmp_path), run_id)
    assert run.config().model == "user:torchvision.resnet18" and run.config().dataset == "user:FakeData"
    traj = load_forget_run(tmp_path, run_id).trajectory
    assert traj.groups["conv1.weight"] == "conv" and traj.groups["bn1.weight"] == "norm"
    assert traj.groups["fc.weight"] == "fc" and len(traj.states) == 2 and traj.report is not None
    assert traj.warm is not None and len(traj.warm.states) == 1  # D0 is half the pool: ×2 is a real superset


def test_backtest_of_a_user_run_gives_weights_and_says_why_no_accuracy(user_run, capsys):
    root, run_id, *_ = user_run
    assert main(["backtest", "--run", run_id, "--methods", "taskvector", "--json", "--runs-dir", str(root)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r for r in result["rows"] if r["level"] == "group"]  # the weight figures are there
    assert all(a["source_acc"] is None and "your own network" in a["note"] for a in result["accuracy"]
               if a["method"] != "keep Θ1")


def test_compare_backtests_a_user_run_and_says_what_needs_an_experiment(monkeypatch, user_run, capsys):
    """Compare opens a forget run of the user's own network: the backtest per group and per layer (the numbers the
    ``backtest`` command gives), its headline first, and one line on what only an experiment has."""
    root, run_id, *_ = user_run
    at = page(monkeypatch, root, "compare", runs=run_id)
    assert not at.exception, at.exception
    assert at.markdown[0].value.replace("\\", "").startswith("**Hiding Θ0 and predicting it back")
    assert any("A forget run has no target task" in t and "need an experiment run" in t and "Predict form" in t
               for t in texts(at))
    assert at.multiselect(key="compare-runs").options == ["mine (user:TensorDataset, user:TwoLayer, r=0.5)"]
    assert main(["backtest", "--run", run_id, "--methods", "taskvector", "--json", "--runs-dir", str(root)]) == 0
    cli = [r for r in json.loads(capsys.readouterr().out)["rows"] if r["method"] == "taskvector"]
    groups = at.dataframe[0].value
    assert list(groups["group"]) == [r["group"] for r in cli if r["level"] == "group"]
    (spec,) = [s for s in charts(at) if s["layout"]["title"]["text"] == "Backtest per layer (mine, forget run)"]
    bars = next(t for t in spec["data"] if t["name"] == method_label("taskvector"))  # by its label
    by_layer = {r["layer"]: r["rel_error"] for r in cli if r["level"] == "layer"}
    assert set(bars["x"]) == {"body.0.weight", "body.0.bias", "head.weight", "head.bias"} == set(by_layer)
    heights = np.frombuffer(base64.b64decode(bars["y"]["bdata"]), bars["y"]["dtype"])  # plotly's typed array
    assert list(heights) == pytest.approx([by_layer[name] for name in bars["x"]])


def test_scaling_says_a_user_run_has_no_downstream_task_and_shows_its_warm_oracle(monkeypatch, user_run):
    root, run_id, *_ = user_run
    at = page(monkeypatch, root, "scaling", runs=run_id)
    assert not at.exception, at.exception
    answer = at.markdown[0].value.replace("\\", "")
    assert answer == f"**{forget_scaling_headline(load_film_result(root, run_id))}**"
    assert answer.startswith("**A forget run has no downstream task") and "×2 data (the warm oracle)" in answer
    traj = load_forget_run(root, run_id).trajectory
    (spec,) = [s for s in charts(at) if s["layout"]["title"]["text"].startswith("Source accuracy of Θ0 and its warm")]
    assert spec["data"][0]["x"] == [1.0, 2.0]
    assert spec["data"][0]["y"] == pytest.approx([traj.source_acc[0], traj.warm.source_acc[0]])
    assert not [s for s in charts(at) if "Target accuracy" in s["layout"]["title"]["text"]]  # no downstream figure


def test_present_steps_through_a_user_run_and_says_what_it_lacks(monkeypatch, user_run):
    root, run_id, *_ = user_run
    shown = {}
    for step in range(1, 6):
        at = page(monkeypatch, root, "present", run=run_id, step=str(step))
        assert not at.exception, (step, at.exception)
        shown[step] = (at.header[0].value.replace("\\", ""), charts(at), [i.value for i in at.info])
    film, pca, warm = shown[1][1], shown[2][1], shown[4][1]
    assert shown[1][0].startswith("The film") and film[0]["layout"]["title"]["text"].startswith("Forgetting panel")
    assert "warm oracles Θ₋ₖ (more data)" in [t["name"] for t in film[0]["data"]]
    assert shown[2][0] == "The film is a path through weight space: 3 networks, from the most-forgotten to Θ0."
    assert len(pca) == 1 and len(pca[0]["data"][0]["x"]) == 3
    assert shown[4][0].startswith("The film continued on ×2 data (the warm oracle) reached source accuracy")
    assert [t["name"] for t in warm[0]["data"]] == ["film (most-forgotten stage → Θ0)",
                                                    "warm oracles Θ₋ₖ (the real continuation)"]
    headline, figures, notes = shown[3]  # no prediction stored yet: how to add one, no figure
    assert not figures and headline.startswith("This forget run holds no prediction yet")
    assert any("Predict form" in n for n in notes)
    headline, figures, notes = shown[5]  # no downstream task: the honest line, no figure
    assert not figures and headline.startswith("A forgetting-only run")
    assert any("needs an experiment run" in n for n in notes)


def test_runs_lists_a_user_run_with_its_headline(monkeypatch, user_run):
    root, run_id, *_ = user_run
    at = page(monkeypatch, root, "runs", run=run_id)
    assert not at.exception, at.exception
    assert f"**{stored_headline(root, run_id)}**" in [m.value.replace("\\", "") for m in at.markdown]
    assert run_id in set(at.dataframe[0].value["id"])


def test_a_user_run_without_warm_oracles_says_so_on_scaling_and_present(monkeypatch, tmp_path):
    run_id = record_forgetting(TwoLayer(), blobs(200, 0), runs_dir=tmp_path, warm="off", **FAST)
    at = page(monkeypatch, tmp_path, "scaling", runs=run_id)
    assert not at.exception, at.exception
    assert "This run has no warm oracle" in at.markdown[0].value.replace("\\", "") and not charts(at)
    at = page(monkeypatch, tmp_path, "present", run=run_id, step="4")
    assert not at.exception, at.exception
    assert not charts(at) and at.header[0].value.replace("\\", "").startswith("This run has no warm oracle")
    assert any("record the film again with warm oracles" in i.value for i in at.info)


def test_the_library_names_record_forgetting_at_the_package_top():
    """``import know_core as know; know.record_forgetting(...)``, as the issue writes it, is the api's function."""
    import know_core
    import know_core.api

    assert know_core.record_forgetting is know_core.api.record_forgetting
    assert "record_forgetting" in dir(know_core)
