"""One override path: dotted keys (``--set KEY=VALUE``, the generated flags, the Experiments form) parsed by each
field's
type, validated once per boundary crossing, with the range of a field written once in its metadata."""

from __future__ import annotations

import collections
import dataclasses
import types
from pathlib import Path

import pytest
from experiment_helpers import tiny_experiment
from streamlit.testing.v1 import AppTest

from know_core.cli import build_parser, main
from know_core.common.errors import ConfigError, KnowError
from know_core.engine.config import ForgetConfig, with_overrides
from know_core.experiment.spec import ExperimentConfig
from know_core.jobs import launch as jobs
from know_core.jobs import worker
from know_core.store.runstore import RunStore

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--dataset",
    "synthetic",
    "--model",
    "mlp",
    "--stages",
    "4",
    "--pretrain-epochs",
    "2",
    "--batch-size",
    "32",
    "--device",
    "cpu",
    "--quiet",
]


def test_dotted_overrides_are_parsed_by_the_field_type():
    cfg = with_overrides(
        ForgetConfig(),
        {
            "r": "0.33",
            "optim.lr": "0.01",
            "optim.batch_size": "None",
            "balanced": "yes",
            "pretrain.max_epochs": "7",
            "stage_budget": "steps:9",
        },
    )
    assert (cfg.r, cfg.optim.lr, cfg.optim.batch_size, cfg.balanced, cfg.pretrain.max_epochs, cfg.stage_budget) == (
        0.33,
        0.01,
        None,
        True,
        7,
        "steps:9",
    )
    exp = with_overrides(
        ExperimentConfig(),
        {
            "source.r": "0.25",
            "finetune.epochs": "10",
            "source.optim.lr": "0.02",
            "seeds": "1, 2 3",
            "scales": "4 16",
            "official_known": "none",
        },
    )
    assert (exp.source.r, exp.finetune.epochs, exp.source.optim.lr, exp.seeds, exp.scales, exp.official_known) == (
        0.25,
        10,
        0.02,
        [1, 2, 3],
        [4.0, 16.0],
        None,
    )
    assert with_overrides(ExperimentConfig(), {"methods": ["naive"]}).methods == ["naive"]  # typed values pass as is


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"nope": "1"}, "unknown config key 'nope'"),
        ({"source.nope": "1"}, "unknown config key 'source.nope'"),
        ({"finetune.epochs.x": "1"}, "unknown config key 'finetune.epochs.x'"),
        ({"finetune.epochs": "ten"}, "finetune.epochs: expected int, got 'ten'"),
        ({"source.balanced": "maybe"}, "source.balanced: expected bool"),
        ({"seeds": "0 x"}, "seeds: expected int, got 'x'"),
        ({"source": "1"}, "source is a section"),
    ],
)
def test_bad_dotted_overrides_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        with_overrides(ExperimentConfig(), overrides)


def stopped_at(monkeypatch, module: object, name: str) -> list:
    """Replace ``module.name`` by a stub that keeps the config it is given and stops the command (exit 2)."""
    seen: list = []

    def stub(*args, **_):
        seen.append(next(a for a in args if isinstance(a, (ForgetConfig, ExperimentConfig))))
        raise KnowError("stopped by the test")

    monkeypatch.setattr(module, name, stub)
    return seen


def test_forget_flags_and_set_share_one_path(monkeypatch, tmp_path):
    import know_core.cli.forget

    seen = stopped_at(monkeypatch, know_core.cli.forget, "record_forgetting")
    assert (
        main(
            [
                "forget",
                *TINY,
                "--runs-dir",
                str(tmp_path),
                "--lr",
                "0.005",
                "--weight-decay",
                "0.1",
                "--set",
                "r=0.25",
                "--set",
                "optim.momentum=0.5",
                "--set",
                "pretrain.val_fraction=0.2",
            ]
        )
        == 2
    )
    cfg = seen[-1]
    assert (cfg.dataset, cfg.stages, cfg.optim.batch_size, cfg.optim.lr, cfg.r) == ("synthetic", 4, 32, 0.005, 0.25)
    assert (cfg.optim.momentum, cfg.pretrain.val_fraction, cfg.optim.weight_decay) == (0.5, 0.2, 0.1)
    assert cfg.protocol == "equal-steps+custom"  # a protocol field was overridden


def test_demo_set_reaches_nested_keys(monkeypatch, tmp_path):
    import know_core.cli.demo

    seen = stopped_at(monkeypatch, know_core.cli.demo, "check_demo")
    assert (
        main(
            [
                "demo",
                "--out",
                str(tmp_path / "o"),
                "--seeds",
                "3",
                "4",
                "--oracles",
                "off",
                "--target-train",
                "50",
                "--set",
                "source.r=0.25",
                "--set",
                "finetune.epochs=10",
                "--set",
                "source.optim.lr=0.01",
                "--set",
                "scales=4 16",
            ]
        )
        == 2
    )
    cfg = seen[-1]
    assert (cfg.source.r, cfg.finetune.epochs, cfg.source.optim.lr, cfg.scales, cfg.seeds) == (
        0.25,
        10,
        0.01,
        [4.0, 16.0],
        [3, 4],
    )
    assert (cfg.oracles, cfg.source.warm, cfg.target_train) == ("off", "off", 50)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["forget", "--set", "nope=1"], "unknown config key 'nope'"),
        (["forget", "--set", "r"], "--set 'r': write KEY=VALUE"),
        (["forget", "--set", "r=2"], "r must be strictly between 0 and 1"),
        (["forget", "--stages", "two"], "stages: expected int, got 'two'"),
        (["demo", "--out", "{tmp}/o", "--set", "source.r=abc"], "source.r: expected float, got 'abc'"),
        (["demo", "--out", "{tmp}/o", "--set", "finetune.nope=1"], "unknown config key 'finetune.nope'"),
        (["demo", "--out", "{tmp}/o", "--set", "finetune.epochs=0"], "finetune.epochs must be an integer >= 1"),
    ],
)
def test_bad_overrides_are_one_line_exit_2_and_record_nothing(capsys, tmp_path, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "forget":
        argv = ["forget", *TINY, "--runs-dir", str(tmp_path / "runs"), *argv[1:]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "o").exists() and not (tmp_path / "runs").exists()


@pytest.fixture
def validations(monkeypatch):
    """How often each config class is validated (ExperimentConfig.validate includes its source's)."""
    counts: collections.Counter = collections.Counter()
    for cls in (ForgetConfig, ExperimentConfig):

        def counted(self, _validate=cls.validate, _name=cls.__name__):
            counts[_name] += 1
            return _validate(self)

        monkeypatch.setattr(cls, "validate", counted)
    return counts


def test_a_config_is_validated_once_per_boundary_crossing(validations, monkeypatch, tmp_path):
    assert main(["forget", *TINY, "--runs-dir", str(tmp_path / "cli")]) == 0
    assert validations == {"ForgetConfig": 1}  # the CLI; record_forgetting and run_forgetting trust it
    validations.clear()
    monkeypatch.setattr(jobs, "_spawn", lambda *a, **k: 0)
    run_id = jobs.launch(tiny_experiment(seeds=[0, 1, 2]), tmp_path / "dash", "three seeds")
    assert validations == {"ExperimentConfig": 1, "ForgetConfig": 1}  # the form's launch
    validations.clear()
    assert worker._run(run_id, str(tmp_path / "dash")) == 0
    assert validations == {"ExperimentConfig": 1, "ForgetConfig": 1}  # the worker reading its config, for 3 seeds
    assert RunStore(tmp_path / "dash").info(run_id).status == "done"


def test_the_range_of_r_is_written_once(monkeypatch, capsys, tmp_path):
    field = ForgetConfig.__dataclass_fields__["r"]
    monkeypatch.setattr(field, "metadata", types.MappingProxyType({**field.metadata, "high": 0.75}))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["forget", "--help"])
    assert "strictly between 0 and 0.75" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(ConfigError, match="r must be strictly between 0 and 0.75"):
        dataclasses.replace(ForgetConfig(), r=0.8).validate()
    monkeypatch.setenv("KNOW_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.switch_page("screens/experiments.py")
    at.run()
    r = next(n for n in at.number_input if n.label.startswith("r (each subset"))
    assert r.max == pytest.approx(0.75 - 1e-6) and r.min == pytest.approx(1e-6)
    s = next(n for n in at.number_input if n.label.startswith("S (stages"))
    assert s.min == 2


def test_form_widgets_are_dotted_overrides(monkeypatch, tmp_path):
    launched: list = []
    monkeypatch.setattr(jobs, "launch", lambda cfg, runs_dir, name=None: launched.append(cfg) or "fake-run")
    monkeypatch.setenv("KNOW_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.switch_page("screens/experiments.py")
    at.run()
    next(n for n in at.number_input if n.label == "Fine-tune epochs").set_value(3)
    next(n for n in at.number_input if n.label == "Learning rate").set_value(0.01)
    next(t for t in at.text_input if t.label == "Seeds").set_value("4, 5")
    next(b for b in at.button if b.label == "Launch").click().run()
    assert not at.error, [e.value for e in at.error]
    cfg = launched[-1]
    assert (cfg.finetune.epochs, cfg.source.optim.lr, cfg.seeds) == (3, 0.01, [4, 5])
    assert cfg.source.protocol == "equal-steps"  # no protocol field changed
    next(t for t in at.text_input if t.label == "Seeds").set_value("4 x")
    next(b for b in at.button if b.label == "Launch").click().run()
    assert any("seeds: expected int, got 'x'" in e.value.replace("\\", "") for e in at.error)
    assert len(launched) == 1
