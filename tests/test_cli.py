import json
import subprocess
import sys

import pytest
from conftest import REPO

from know_core.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "know_core", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_forget_with_the_documented_flags(tmp_path):
    proc = run_cli("forget", "--dataset", "digits", "--model", "simple_cnn", "--r", "0.5", "--stages", "5",
                   "--protocol", "release", "--seed", "0", "--runs-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "pre-training" in proc.stderr and "forgetting" in proc.stderr  # progress bars
    assert "source acc" in proc.stdout
    listing = json.loads(run_cli("runs", "list", "--json", "--runs-dir", str(tmp_path)).stdout)
    assert len(listing) == 1 and listing[0]["status"] == "done"
    assert listing[0]["summary"]["stage_sizes"][0] > listing[0]["summary"]["stage_sizes"][-1]
    shown = run_cli("runs", "show", listing[0]["id"], "--runs-dir", str(tmp_path))
    assert shown.returncode == 0 and listing[0]["id"] in shown.stdout
    assert "protocol release: stage budget epochs:1" in shown.stdout
    if not listing[0]["summary"]["forgot"]:
        assert "WARNING: NO forgetting" in proc.stderr or "WARNING: dips and recovers" in proc.stderr
    block = json.loads(run_cli("runs", "show", listing[0]["id"], "--json", "--runs-dir", str(tmp_path)).stdout)
    forgetting = block["forgetting"]
    assert {"forgot", "forgot_acc", "p_value", "strength", "smoothness", "source_acc", "source_loss", "removed_acc",
            "step_rel", "step_cos"} <= set(forgetting)
    assert len(forgetting["source_loss"]) == len(forgetting["step_rel"]) == 5 and 0 <= forgetting["p_value"] <= 1


def test_help_lists_the_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0 and "forget" in proc.stdout and "runs" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--r", "1.2"], "r must be strictly between 0 and 1"),
    (["--r", "0"], "r must be strictly between 0 and 1"),
    (["--stages", "1"], "stages must be an integer >= 2"),
    (["--stages", "12"], "fewer than one batch"),
    (["--batch-size", "1", "--stages", "12"], "fewer than the 10 classes"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--model", "vgg"], "unknown model 'vgg'"),
    (["--stage-budget", "steps:0"], "stage_budget 'steps:0'"),
    (["--stage-budget", "steps:abc"], "stage_budget 'steps:abc'"),
    (["--stage-budget", "epochs:-1"], "stage_budget 'epochs:-1'"),
    (["--stage-budget", "converge:x"], "stage_budget 'converge:x'"),
    (["--protocol", "turbo"], "unknown protocol 'turbo'"),
    (["--weight-decay", "-0.1"], "optim.weight_decay must be >= 0"),
    (["--weight-decay", "nan"], "optim.weight_decay must be >= 0"),
    (["--oracles", "on"], "warm oracles: ×8 needs"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path, capsys, args, message):
    assert main(["forget", "--quiet", "--runs-dir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if p.name not in ("index.sqlite", "index.sqlite-wal",
                                                                  "index.sqlite-shm", ".staging")]


def test_unwritable_runs_dir_and_damaged_run_exit_2(tmp_path, capsys, stored_run):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["forget", "--quiet", "--runs-dir", str(blocker / "runs")]) == 2
    assert "not writable" in capsys.readouterr().err
    assert main(["runs", "show", "nope", "--runs-dir", str(tmp_path)]) == 2
    assert "no run 'nope'" in capsys.readouterr().err


def test_runs_show_reports_a_damaged_run(tmp_path, tiny_cfg, capsys):
    from know_core.jobs.lifecycle import record_forgetting
    from know_core.store.runstore import RunStore

    run_id = record_forgetting(tiny_cfg, RunStore(tmp_path))
    (tmp_path / run_id / "metrics.csv").write_text("broken")
    assert main(["runs", "show", run_id, "--runs-dir", str(tmp_path)]) == 2
    assert "damaged: metrics.csv: checksum mismatch" in capsys.readouterr().err


def test_argparse_errors_exit_2():
    proc = run_cli("forget", "--r", "half")  # parsed by the field's type, like --set r=half: one line naming the key
    assert proc.returncode == 2 and proc.stderr == "error: r: expected float, got 'half'\n"
    proc = run_cli("forget", "--optimizer", "lion")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
