"""The digits preset (live classes: seconds, and it says there is no forgetting) and refusals that propose the nearest
valid value, computed by running the check (know_core.experiment.suggest)."""

import re

import pytest

from know_core.api import start, watch
from know_core.common.errors import ConfigError
from know_core.experiment.pipeline import preflight_experiment, run_experiment
from know_core.experiment.spec import available_presets, preset, resolve_experiment


def _refusal(cfg) -> str:
    with pytest.raises(ConfigError) as info:
        preflight_experiment(cfg)
    return str(info.value)


def _fixes(message: str) -> dict[str, str]:
    tail = message.partition(" — nearest valid: ")[2]
    return dict(part.split("=") for part in tail.split(" or ")) if tail else {}


def test_switching_the_quick_source_to_digits_proposes_the_nearest_d0_fraction_that_passes():
    cfg = resolve_experiment(preset("quick"), None, {"source.dataset": "digits", "target_dataset": "digits:5-9"})
    message = _refusal(cfg)
    assert message.startswith("stage 1 would hold 20 samples")
    fixes = _fixes(message)
    assert fixes == {"source.d0_fraction": "0.4"}, message  # stages, r and batch size cannot fix it alone
    preflight_experiment(resolve_experiment(cfg, None, {"source.d0_fraction": 0.4}))  # the proposal passes
    below = _fixes(_refusal(resolve_experiment(cfg, None, {"source.d0_fraction": 0.39})))  # 0.39 is refused
    assert below["source.d0_fraction"] == "0.4"


def test_the_form_launch_path_refuses_with_the_proposal_and_records_nothing(tmp_path):
    """The Experiments form launches through know_core.api.start (jobs.launch) and shows the message as it is."""
    cfg = resolve_experiment(preset("digits"), None, {"source.d0_fraction": 0.05})
    with pytest.raises(ConfigError, match=r"would hold .* — nearest valid: .*source\.d0_fraction=0\.2$"):
        start(cfg, tmp_path, "refused")
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_every_proposed_value_passes_and_the_next_nearer_one_does_not():
    cfg = resolve_experiment(preset("digits"), None, {"source.stages": 6})  # its last stage holds 5 < batch 8
    fixes = _fixes(_refusal(cfg))
    assert set(fixes) == {"source.stages", "source.d0_fraction", "source.optim.batch_size"}, fixes
    assert fixes["source.stages"] == "5" and fixes["source.optim.batch_size"] == "4"
    for key, value in fixes.items():
        preflight_experiment(resolve_experiment(cfg, None, {key: value}))
    nearer = float(fixes["source.d0_fraction"]) - 0.01
    with pytest.raises(ConfigError):
        preflight_experiment(resolve_experiment(cfg, None, {"source.d0_fraction": nearer}))


def test_a_refusal_no_single_field_can_fix_keeps_its_message():
    cfg = resolve_experiment(preset("digits"), None, {"methods": ["nope"]})
    message = _refusal(cfg)
    assert "nearest valid" not in message and re.match(r"unknown method 'nope'", message)


def test_digits_preset_is_listed_and_runs_to_the_end_saying_whether_it_forgot(tmp_path):
    assert "digits" in available_presets() and "seconds" in available_presets()["digits"]
    cfg = preset("digits")
    assert cfg.source.dataset == "digits:0-4" and cfg.target_dataset == "digits:5-9"
    tiny = resolve_experiment(cfg, None, {"finetune.epochs": 1, "methods": ["naive", "taskvector"], "scales": [2.0],
                                          "source.pretrain.max_epochs": 2})
    preflight_experiment(tiny)
    results = run_experiment(tiny, tmp_path)
    assert {r["method"] for r in results["rows"]} >= {"naive", "scratch", "taskvector", "oracle-warm"}
    verdict = results["trajectories"][0]["verdict"]
    assert verdict.startswith("forgetting") or verdict.startswith("NO forgetting"), verdict


def test_digits_preset_runs_as_a_background_job(tmp_path):
    import time

    tiny = resolve_experiment(preset("digits"), None, {"finetune.epochs": 1, "methods": ["naive"], "scales": [2.0],
                                                       "source.pretrain.max_epochs": 1})
    run_id = start(tiny, tmp_path, "digits demo")
    deadline = time.monotonic() + 120
    while watch(tmp_path, run_id)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    report = watch(tmp_path, run_id)
    assert report["status"] == "done", report
    log = (tmp_path / run_id / ".worker.log").read_text()
    assert "] pre-training, " in log and "worker: done in " in log, log


def test_demo_preset_digits_from_the_command_line_logs_one_line_per_phase_without_bars(tmp_path):
    """stderr is a file here, not a terminal: phase lines instead of tqdm bars (no carriage returns)."""
    import subprocess
    import sys

    from conftest import REPO

    proc = subprocess.run([sys.executable, "-m", "know_core", "demo", "--preset", "digits", "--out", str(tmp_path),
                           "--methods", "naive", "--scales", "2", "--set", "finetune.epochs=1",
                           "--set", "source.pretrain.max_epochs=1"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "it/s" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("pre-training") and "fine-tuning naive (4 steps)" in lines, lines
    assert len(lines) == len(set(lines)), lines  # one line per phase
    assert (tmp_path / "results.json").is_file()
