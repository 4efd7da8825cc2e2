"""Predictions for a stored film from one engine function (``predict_run``): the ``predict`` command prints and stores
exactly what the function stores; the dashboard's background predict job stores ``pred-*`` and reports done, a
cancel stores nothing, a request that cannot run is refused in one line with no job started; a predictor's options
(``--lam`` …) reach the job's predictor and a bad one is refused in the command's words; the Trajectory page's
Predict form runs the job (with an option set in it) and the new method appears in the page's chart."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO
from page_helpers import charts, page, texts
from safetensors.torch import save_file
from test_import import base_states, film_of
from test_import_dashboard import wait as wait_for

from know_core.api import KnowError, load_imported, method_label, predict_choices, predict_status, start_predict
from know_core.cli import main
from know_core.common.errors import Cancelled
from know_core.common.hooks import Hooks
from know_core.engine.extrapolate import extrapolate
from know_core.experiment.predictrun import predict_run
from know_core.imports.film import open_imported_run
from know_core.jobs import launch
from know_core.jobs.folderjobs import PREDICTS
from know_core.jobs.launch import CANCEL
from know_core.models import predicted_groups
from know_core.predictors import get_predictor, known_checkpoint
from know_core.store.legacy import read
from know_core.store.runstore import RunStore


@pytest.fixture(scope="module")
def films(tmp_path_factory):
    """A runs dir with an imported film of 5 stages and one of 4 (no predictions yet); copy before writing."""
    root = tmp_path_factory.mktemp("predict-films")
    runs = root / "runs"
    ids = {}
    for n in (5, 4):
        paths = film_of(root / f"film{n}", base_states(n))
        assert main(["import", *map(str, paths), "--kind", "forgetting", "--runs-dir", str(runs), "--quiet",
                     "--name", f"film {n}"]) == 0
        ids[n] = next(r.id for r in RunStore(runs).list_runs(kind="imported") if r.name == f"film {n}")
    return runs, ids


def copy_runs(films, dest: Path) -> Path:
    shutil.copytree(films[0], dest)
    return dest


def stored(runs: Path, run_id: str, method: str) -> list[dict[str, torch.Tensor]]:
    run = RunStore(runs, create=False).open(run_id)
    name = f"pred-{method}.safetensors"
    return read(*run.read_tensors(name), name, "predictions")[0]["predictions"]


@pytest.mark.parametrize("method", ["taskvector", "nino"])  # one tensor at a time; the whole film (NiNo's graph)
def test_the_engine_function_stores_what_the_cli_stores_bit_for_bit(capsys, films, tmp_path, method):
    run_id = films[1][5]
    by_cli, by_fn = copy_runs(films, tmp_path / "cli"), copy_runs(films, tmp_path / "fn")
    assert main(["predict", "--run", run_id, "--method", method, "--steps", "3", "--runs-dir", str(by_cli),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out.replace(str(by_cli), "RUNS")
    events = []
    result = predict_run(RunStore(by_fn), run_id, method, get_predictor(method), 3, hooks=Hooks(progress=events.append))
    assert "\n".join(result.lines()).replace(str(by_fn), "RUNS") + "\n" == printed
    assert result.scales == [2.0, 4.0, 8.0] and result.streamed == (method == "taskvector")
    assert events and events[-1].done == events[-1].total > 0  # progress reached its end
    a, b = stored(by_cli, run_id, method), stored(by_fn, run_id, method)
    assert (by_cli / run_id / result.name).read_bytes() == result.path.read_bytes()
    _, _, film = open_imported_run(RunStore(by_fn), run_id)  # the in-memory path gives the same numbers
    reference = extrapolate(film.states, predicted_groups(film.groups, False), get_predictor(method), 3)
    for k in range(3):
        assert a[k].keys() == b[k].keys() == reference[k].keys()
        for name in a[k]:
            assert torch.equal(a[k][name], b[k][name])
            torch.testing.assert_close(b[k][name], reference[k][name].to(b[k][name].dtype))


def test_a_cancel_in_the_middle_leaves_the_run_as_it_was(films, tmp_path):
    runs, run_id = copy_runs(films, tmp_path / "runs"), films[1][5]
    before = sorted(p.name for p in (runs / run_id).iterdir())
    manifest = (runs / run_id / "manifest.json").read_bytes()
    ticks = []
    hooks = Hooks(progress=ticks.append, should_stop=lambda: len(ticks) >= 3)  # stop after the 2nd tensor
    with pytest.raises(Cancelled):
        predict_run(RunStore(runs), run_id, "expfit", get_predictor("expfit"), 2, hooks=hooks)
    assert sorted(p.name for p in (runs / run_id).iterdir()) == before  # no pred file, no temporary left
    assert (runs / run_id / "manifest.json").read_bytes() == manifest


def wait(runs: Path, key: str) -> dict:
    return wait_for(runs, key, status_of=predict_status)


def test_the_background_job_stores_the_prediction_and_reports_done(films, tmp_path):
    runs, run_id = copy_runs(films, tmp_path / "runs"), films[1][5]
    updated = RunStore(runs).info(run_id).updated
    key = start_predict(runs, run_id, "expfit", steps=2, reset_norm=True)
    status = wait(runs, key)
    assert status["state"] == "done", status
    assert status["method"] == "expfit" and status["file"] == "pred-expfit.safetensors"
    assert status["scales"] == [2.0, 4.0] and "reset (as released)" in status["lines"][1]
    assert load_imported(runs, run_id).steps == {"expfit": 2}
    assert RunStore(runs).info(run_id).updated > updated  # cached reads keyed by the update time read it again


def test_the_background_job_predicts_a_forget_run_too(stored_run, tmp_path):
    root, run_id = stored_run
    runs = shutil.copytree(root, tmp_path / "runs")
    key = start_predict(runs, run_id, "taskvector", steps=1)
    status = wait(runs, key)
    assert status["state"] == "done", status
    assert len(stored(runs, run_id, "taskvector")) == 1


def test_a_job_cancelled_before_its_worker_starts_stores_nothing(films, tmp_path, monkeypatch):
    runs, run_id = copy_runs(films, tmp_path / "runs"), films[1][5]
    spawned = []
    monkeypatch.setattr(launch, "_spawn", lambda args, log, job: spawned.append(args))  # start it by hand, below
    key = start_predict(runs, run_id, "taskvector")
    (runs / PREDICTS / key / CANCEL).touch()
    (args,) = spawned
    done = subprocess.run([sys.executable, "-m", launch.WORKER, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)  # as _spawn starts it: from the repository root
    assert done.returncode == 130, done.stderr
    status = predict_status(runs, key)
    assert status["state"] == "cancelled" and "nothing stored" in status["error"]
    assert not list((runs / run_id).glob("pred-*"))


@pytest.mark.parametrize("film, request_, words", [
    (5, {"method": "nope"}, "unknown method 'nope'"),
    (5, {"method": "naive"}, "unknown method 'naive'"),  # the baseline predicts nothing
    (5, {"method": "expfit", "steps": 0}, "steps must be an integer in [1, 10], got 0"),
    (5, {"method": "expfit", "steps": 11}, "got 11"),
    (4, {"method": "nino"}, "nino needs a film of at least 5 stages; this one has 4"),
    (5, {"method": "expfit", "drift_correct": True}, "no control film"),
])
def test_a_request_that_cannot_run_is_refused_in_one_line_and_starts_no_job(films, tmp_path, film, request_, words):
    runs = copy_runs(films, tmp_path / "runs")
    with pytest.raises(KnowError) as caught:
        start_predict(runs, films[1][film], **request_)
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert not (runs / PREDICTS).exists()
    with pytest.raises(KnowError, match="no run 'missing'"):
        start_predict(runs, "missing", "expfit")


def test_the_trajectory_pages_predict_form_runs_the_job_and_shows_the_new_method(monkeypatch, films, tmp_path):
    runs, run_id = copy_runs(films, tmp_path / "runs"), films[1][4]
    at = page(monkeypatch, runs, "trajectory", run=run_id)
    assert not at.exception, at.exception
    at.selectbox(key="traj-imp-pred-method").set_value("nino").run()
    assert any("needs a film of at least 5 stages; this one has 4" in t for t in texts(at))
    assert at.button(key="traj-imp-pred-go").disabled
    at.selectbox(key="traj-imp-pred-method").set_value("expfit")
    at.select_slider(key="traj-imp-pred-k").set_value(2).run()
    at.button(key="traj-imp-pred-go").click().run()
    assert not at.exception, at.exception
    key = at.session_state[f"predict-job-{run_id}"]
    assert wait(runs, key)["state"] == "done"
    at.run()
    assert not at.exception, at.exception
    assert any(f"Stored the {method_label('expfit')} predictions (×2, ×4) in this run." in t for t in texts(at))
    spec = next(s for s in charts(at) if "Imported film and predictions" in s["layout"]["title"]["text"])
    assert "ExpFit" in [t["name"] for t in spec["data"]]  # the new prediction, by its label


def test_two_writers_of_one_run_both_land_in_its_manifest(films, tmp_path):
    """Two predict jobs on one run each held the manifest as they had opened it: the second to finish wrote it back
    without the first's entry, and the first prediction was on disk but never shown. Each writer now adds its entry
    to the manifest as it is on disk, under a lock on the run's folder."""
    import threading

    from know_core.jobs.lifecycle import check_run

    runs, run_id = copy_runs(films, tmp_path / "runs"), films[1][5]
    stale = [RunStore(runs).open(run_id) for _ in range(2)]  # both opened before either writes
    for run, name in zip(stale, ("a", "b"), strict=True):
        run.write_artifact(f"note-{name}.json", lambda tmp, n=name: tmp.write_text(f'"{n}"'))
    assert {"note-a.json", "note-b.json"} <= set(RunStore(runs).open(run_id).manifest["files"])

    errors = []

    def job(method):
        try:
            predict_run(RunStore(runs), run_id, method, get_predictor(method), 2)
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(m,)) for m in ("taskvector", "expfit")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    run = check_run(RunStore(runs), run_id)  # every listed file matches its checksum
    assert {"pred-taskvector.safetensors", "pred-expfit.safetensors"} <= set(run.manifest["files"])
    assert len(stored(runs, run_id, "expfit")) == len(stored(runs, run_id, "taskvector")) == 2


def test_an_option_reaches_the_jobs_predictor_and_stores_what_the_cli_stores_with_it(capsys, films, tmp_path):
    run_id = films[1][5]
    by_job, by_cli = copy_runs(films, tmp_path / "job"), copy_runs(films, tmp_path / "cli")
    key = start_predict(by_job, run_id, "taskvector", steps=2, options={"lam": 0.5})
    assert json.loads((by_job / PREDICTS / key / "request.json").read_text())["options"] == {"lam": 0.5}
    status = wait(by_job, key)
    assert status["state"] == "done", status
    assert "λ=0.5" in status["lines"][0]  # the stored description names it
    assert main(["predict", "--run", run_id, "--method", "taskvector", "--steps", "2", "--lam", "0.5",
                 "--runs-dir", str(by_cli), "--quiet"]) == 0
    capsys.readouterr()
    assert (by_job / run_id / status["file"]).read_bytes() == (by_cli / run_id / status["file"]).read_bytes()
    _, _, film = open_imported_run(RunStore(by_job), run_id)
    default = extrapolate(film.states, predicted_groups(film.groups, False), get_predictor("taskvector"), 2)
    got = stored(by_job, run_id, "taskvector")
    assert any(not torch.equal(got[0][name], default[0][name].to(got[0][name].dtype)) for name in got[0])


def test_predict_choices_list_each_methods_options_from_the_registry():
    choices = {c["method"]: c for c in predict_choices(5)}
    assert choices["taskvector"]["options"] == [
        {"name": "lam", "kind": "float", "help": "step multiplier λ (default 1)", "default": 1.0}]
    assert [(o["name"], o["kind"], o["default"]) for o in choices["known"]["options"]] == [("weights", "path", None)]
    assert choices["expfit"]["options"][0]["default"] == 2.0


@pytest.mark.parametrize("method, options, words", [
    ("taskvector", {"nope": 1.0}, "taskvector has no option 'nope'; its options: lam"),
    ("taskvector", {"lam": "big"}, "taskvector option lam must be a finite number, got 'big'"),
    ("taskvector", {"lam": float("nan")}, "taskvector option lam must be a finite number, got nan"),
    ("known", {"weights": 3}, "known option weights must be a path, got 3"),
    ("known", {"weights": "/no/such/weights.safetensors"},
     "known option weights /no/such/weights.safetensors: No such file or directory"),
    ("taskvector", ["lam"], "options must map option names to values"),
])
def test_a_bad_option_is_refused_in_one_line_and_starts_no_job(films, tmp_path, method, options, words):
    runs = copy_runs(films, tmp_path / "runs")
    with pytest.raises(KnowError) as caught:
        start_predict(runs, films[1][5], method, steps=1, options=options)
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert not (runs / PREDICTS).exists()


@pytest.mark.parametrize("method, flag, make", [
    ("expfit", "q_max", lambda tmp: 0.5),  # out of the registry's bounds
    ("known", "weights", lambda tmp: str(tmp / "other.safetensors")),  # a real safetensors file, not KNOWN's
])
def test_the_job_refuses_what_the_predict_command_refuses_in_the_same_words(capsys, films, tmp_path, method, flag,
                                                                           make):
    runs, run_id = copy_runs(films, tmp_path / "runs"), films[1][5]
    save_file({"x": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    value = make(tmp_path)
    assert main(["predict", "--run", run_id, "--method", method, f"--{flag.replace('_', '-')}", str(value),
                 "--runs-dir", str(runs), "--quiet"]) == 2
    said = capsys.readouterr().err.strip().removeprefix("error: ")
    with pytest.raises(KnowError) as caught:
        start_predict(runs, run_id, method, steps=1, options={flag: value})
    assert str(caught.value) == said and "\n" not in said
    assert not (runs / PREDICTS).exists() and not list((runs / run_id).glob("pred-*"))


def test_an_option_set_in_the_pages_predict_form_reaches_the_job(monkeypatch, films, tmp_path):
    runs, run_id = copy_runs(films, tmp_path / "runs"), films[1][5]
    at = page(monkeypatch, runs, "trajectory", run=run_id)
    assert not at.exception, at.exception
    at.selectbox(key="traj-imp-pred-method").set_value("expfit").run()
    at.number_input(key="traj-imp-pred-opt-expfit-q_max").set_value(0.5).run()  # below its bound: refused
    at.button(key="traj-imp-pred-go").click().run()
    assert [e.value.replace("\\", "") for e in at.error] == [  # one line, the command's words (md-escaped)
        "predictor 'expfit': cannot use these options (expfit option q_max must lie in [1, inf], got 0.5)"]
    assert not (runs / PREDICTS).exists() and f"predict-job-{run_id}" not in at.session_state
    at.selectbox(key="traj-imp-pred-method").set_value("taskvector").run()
    at.number_input(key="traj-imp-pred-opt-taskvector-lam").set_value(0.5)
    at.select_slider(key="traj-imp-pred-k").set_value(1).run()
    assert any(t.replace("\\", "").startswith("Stores TaskVector at ×2 with lam = 0.5") for t in texts(at))
    at.button(key="traj-imp-pred-go").click().run()
    assert not at.exception, at.exception
    key = at.session_state[f"predict-job-{run_id}"]
    assert json.loads((runs / PREDICTS / key / "request.json").read_text())["options"] == {"lam": 0.5}
    status = wait(runs, key)
    assert status["state"] == "done" and "λ=0.5" in status["lines"][0], status


def test_weights_named_in_the_options_stand_in_for_a_missing_default_known_checkpoint(monkeypatch, films, tmp_path):
    runs, run_id = copy_runs(films, tmp_path / "runs"), films[1][5]
    weights = shutil.copy(known_checkpoint.DEFAULT_CHECKPOINT, tmp_path / "mine.safetensors")  # a real checkpoint
    monkeypatch.setattr(known_checkpoint, "DEFAULT_CHECKPOINT", tmp_path / "gone.safetensors")
    with pytest.raises(KnowError, match="known needs its checkpoint .*gone.safetensors, which is not there"):
        start_predict(runs, run_id, "known", steps=1)
    at = page(monkeypatch, runs, "trajectory", run=run_id)
    at.selectbox(key="traj-imp-pred-method").set_value("known").run()
    assert at.button(key="traj-imp-pred-go").disabled
    at.text_input(key="traj-imp-pred-opt-known-weights").input(str(weights)).run()
    assert not at.button(key="traj-imp-pred-go").disabled and not at.exception
    key = start_predict(runs, run_id, "known", steps=1, options={"weights": str(weights)})
    status = wait(runs, key)
    assert status["state"] == "done" and "checkpoint mine.safetensors" in status["lines"][0], status
