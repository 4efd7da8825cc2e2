"""Hostile parameters (issue 11, classes 5, 6 and 8): every one is refused with one `error:` line and exit 2 before
anything is recorded — no run row, no folder, no file outside the runs directory."""

from __future__ import annotations

import json
import os

import pytest

from know_core.cli import main

TINY = ["--dataset", "synthetic", "--model", "mlp", "--stages", "4", "--pretrain-epochs", "4", "--batch-size", "32",
        "--device", "cpu", "--quiet"]


def refused(capsys, argv, message=None) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, (argv, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    if message:
        assert message in err, err
    return err


def nothing_recorded(root) -> None:
    from know_core.store.runstore import RunStore

    if root.exists() and (root / "index.sqlite").exists():
        assert RunStore(root).list_runs() == []
    if root.exists():
        assert [p.name for p in root.iterdir() if not p.name.startswith(("index.sqlite", ".staging"))] == []
        staging = root / ".staging"
        assert not staging.exists() or list(staging.iterdir()) == []


@pytest.fixture
def results_file(tmp_path):
    def make(data):
        path = tmp_path / "results.json"
        path.write_text(json.dumps(data))
        return str(path)
    return make


BAD_PARAMS = [  # class 5: bad parameters that used to reach a traceback
    (["demo", "--out", "{tmp}/o", "--scales", "0"], "scale"),
    (["demo", "--out", "{tmp}/o", "--scales", "-2"], "scale"),
    (["demo", "--out", "{tmp}/o", "--scales", "nan"], "scale"),
    (["demo", "--out", "{tmp}/o", "--scales", "inf"], "scale"),
    (["demo", "--out", "{tmp}/o", "--scales", "2048"], "steps back"),
    (["demo", "--out", "{tmp}/afile"], "is a file"),
    (["demo", "--out", "{tmp}/afile/under"], "is a file"),
    (["demo", "--out", "/proc/know-demo"], "/proc"),
    (["demo", "--runs-dir", ""], "empty path"),
    (["demo", "--out", "{tmp}/o", "--seeds", "1180591620717411303424"], "seeds"),
    (["demo", "--out", "{tmp}/o", "--methods", "nosuch"], "unknown method"),
    (["demo", "--out", "{tmp}/o", "--preset", "nosuch"], "unknown preset"),
    (["forget", "--runs-dir", "{tmp}/runs", "--seed", "1180591620717411303424", *TINY], "seed"),
    (["forget", "--runs-dir", "{tmp}/runs", "--lr", "nan", *TINY], "lr"),
    (["forget", "--runs-dir", "{tmp}/runs", "--r", "nan", *TINY], "r must be"),
    (["forget", "--runs-dir", "{tmp}/runs", "--d0-fraction", "inf", *TINY], "d0_fraction"),
    (["forget", "--runs-dir", "", *TINY], "empty path"),
    (["metatrain", "--data", "{tmp}", "--out", "{tmp}/k.safetensors", "--lr", "nan"], "--lr"),
    (["metatrain", "--data", "{tmp}", "--out", "{tmp}/k.safetensors", "--val-fraction", "nan"], "--val-fraction"),
    (["metatrain", "--data", "{tmp}", "--out", "{tmp}/k.safetensors", "--batch-size", "0"], "--batch-size"),
    (["metatrain", "--data", "{tmp}", "--out", "{tmp}/k.safetensors", "--max-rows", "0"], "--max-rows"),
    (["metatrain", "--data", "{tmp}", "--out", "{tmp}/k.safetensors", "--minutes", "nan"], "--minutes"),
    (["metatrain", "--data", "{tmp}", "--out", "{tmp}/afile/k.safetensors"], "is a file"),
    (["metatrain", "--data", "{tmp}/nowhere", "--out", "{tmp}/k.safetensors"], "--data"),
    (["collect", "--list", "--jobs", "-1"], "--jobs"),
    (["collect", "--out", "{tmp}/afile", "--jobs", "1"], "is a file"),
    (["report", "{tmp}/list.json"], "damaged: list.json"),
    (["report", "{tmp}/summary5.json"], "damaged: summary5.json"),
    (["report", "{tmp}/nullstd.json"], "std"),
    (["report", "/dev/zero"], "not a regular file"),
    (["report", "{tmp}"], "is a folder"),
]
PATH_CASES = [  # class 6: paths
    (["forget", "--runs-dir", "{tmp}/runs", *TINY, "--model", "x/../../../escape"], "unknown model"),
    (["forget", "--runs-dir", "{tmp}/runs", *TINY, "--model", "nosuch"], "unknown model"),
    (["forget", "--runs-dir", "{tmp}/runs", *TINY, "--model", ""], "unknown model"),
    (["forget", "--runs-dir", "{tmp}/runs", *TINY, "--model", "<script>"], "unknown model"),
    (["forget", "--runs-dir", "{tmp}/runs", *TINY, "--dataset", "../x"], "unknown dataset"),
    (["runs", "list", "--runs-dir", "{tmp}/missing"], "no runs directory"),
    (["runs", "show", "../x", "--runs-dir", "{tmp}/runs"], "not a run id"),
    (["runs", "delete", "../../x", "--runs-dir", "{tmp}/runs"], "not a run id"),
    (["predict", "--run", "/etc", "--method", "naive", "--runs-dir", "{tmp}/runs"], "not a run id"),
]
SILENT_CASES = [  # class 8: silent acceptance
    (["forget", "--runs-dir", "{tmp}/runs", *TINY, "--dataset", "synthetic:"], "classes"),
    (["forget", "--runs-dir", "{tmp}/runs", *TINY, "--dataset", "synthetic:0-99999999999"], "classes"),
    (["backtest", "--run", "x", "--methods", "", "--runs-dir", "{tmp}/runs"], "--methods"),
    (["backtest", "--run", "x", "--methods", " , ", "--runs-dir", "{tmp}/runs"], "--methods"),
    (["runs", "show", "", "--runs-dir", "{tmp}/runs"], "not a run id"),
    (["runs", "resume", "nosuch", "--runs-dir", "{tmp}/runs"], "no run"),
    (["predict", "--run", "", "--method", "naive", "--runs-dir", "{tmp}/runs"], "not a run id"),
]


@pytest.mark.parametrize("argv, message", BAD_PARAMS + PATH_CASES + SILENT_CASES,
                         ids=[f"{c[0][0]}-{i}" for i, c in enumerate(BAD_PARAMS + PATH_CASES + SILENT_CASES)])
def test_refused_before_anything_is_recorded(tmp_path, capsys, results_file, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "runs").mkdir()
    (tmp_path / "list.json").write_text("[]")
    (tmp_path / "summary5.json").write_text(json.dumps({"summary": 5, "rows": [], "verdicts": []}))
    from know_core.engine.config import to_dict
    from know_core.experiment.spec import preset

    good = {"config": to_dict(preset("quick")), "rows": [{"method": "naive", "scale": 1.0}],
            "summary": [{"method": "naive", "scale": 1.0, "mean": 0.5, "std": None, "n": 1}], "verdicts": [],
            "trajectories": [{"seed": 0, "forgot": True, "verdict": "", "source_acc": [1, 0.5],
                              "stage_sizes": [2, 1]}], "timings": {"total_s": 1}}
    (tmp_path / "nullstd.json").write_text(json.dumps(good))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    refused(capsys, argv, message)
    nothing_recorded(tmp_path / "runs")
    assert not (tmp_path / "o" / "results.json").exists() and not (tmp_path / "k.safetensors").exists()
    assert not (tmp_path / "missing").exists() and not (tmp_path.parent / "escape").exists()
    assert {p.name for p in tmp_path.iterdir()} <= {"afile", "runs", "list.json", "summary5.json", "nullstd.json",
                                                     "o"}


def test_a_diverging_run_is_marked_failed_with_the_reason(tmp_path, capsys):
    from know_core.store.runstore import RunStore

    refused(capsys, ["forget", "--runs-dir", str(tmp_path), *TINY, "--lr", "1e10"], "NaN or infinite")
    (run,) = RunStore(tmp_path).list_runs()
    assert run.status == "failed" and "NaN or infinite" in run.error
    assert not (tmp_path / run.id).exists() and list((tmp_path / ".staging").iterdir()) == []


def test_safetensors_files_are_world_readable(tmp_path, capsys):
    assert main(["forget", "--runs-dir", str(tmp_path), *TINY]) == 0
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert main(["predict", "--run", run.name, "--method", "naive", "--runs-dir", str(tmp_path)]) == 0
    for f in run.glob("*.safetensors"):
        assert f.stat().st_mode & 0o777 == 0o644, f


def test_index_deleted_is_rebuilt_from_the_folders(tmp_path, capsys):
    assert main(["forget", "--runs-dir", str(tmp_path), *TINY, "--name", "kept name"]) == 0
    for f in tmp_path.glob("index.sqlite*"):
        f.unlink()
    capsys.readouterr()
    assert main(["runs", "list", "--json", "--runs-dir", str(tmp_path)]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["status"] == "done" and run["name"] == "kept name" and run["config"]["model"] == "mlp"
    assert main(["runs", "reindex", "--runs-dir", str(tmp_path)]) == 0
    assert "0 run folder(s) added" in capsys.readouterr().out
    assert main(["runs", "show", run["id"], "--runs-dir", str(tmp_path)]) == 0
    assert os.path.exists(tmp_path / "index.sqlite")
