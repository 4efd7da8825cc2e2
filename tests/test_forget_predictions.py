"""A forget run's stored predictions on the pages: ``predict --run`` on a forget run, then the Trajectory page draws the
method past Θ0 beside the warm oracles and scores it against them (the numbers of ``retrodiction.score``); the
Predict form is on the forget run's Trajectory and Runs pages and its job's prediction appears; a damaged prediction
file is one line on the page, never an exception. One reader serves forget and imported runs alike. The predict
request's drift-correction check reads the control film's length from its file's header, loading no tensor."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from conftest import tiny_config
from page_helpers import chart, page, texts
from test_import import base_states, film_of
from test_import_dashboard import wait as wait_for

from know_core import api
from know_core.cli import main
from know_core.common.errors import KnowError, RunStoreError
from know_core.engine.config import OptimConfig
from know_core.engine.extrapolate import save_predictions
from know_core.experiment import predictrun
from know_core.experiment.films import film_length, open_forget_run
from know_core.experiment.predictrun import check_predict_request
from know_core.experiment.retrodiction import score
from know_core.experiment.seedweights import stored_predictions
from know_core.imports.film import open_imported_run
from know_core.jobs.lifecycle import record_forgetting
from know_core.models import GROUPS
from know_core.store.legacy import read
from know_core.store.runfolder import Run
from know_core.store.runstore import RunStore

PCA = "one PCA plane"


@pytest.fixture(scope="module")
def forget_runs(tmp_path_factory):
    """(runs dir, run id): a tiny forget run with warm oracles ×2, ×4 and a control film, and taskvector's
    predictions ×2, ×4 stored by ``predict --run``; copy before writing."""
    root = tmp_path_factory.mktemp("forget-preds") / "runs"
    cfg = tiny_config(d0_fraction=0.25, optim=OptimConfig(batch_size=8))
    run_id = record_forgetting(cfg, RunStore(root))
    assert main(["predict", "--run", run_id, "--method", "taskvector", "--steps", "2", "--runs-dir", str(root),
                 "--quiet"]) == 0
    return root, run_id


def copied(forget_runs, tmp_path):
    return shutil.copytree(forget_runs[0], tmp_path / "runs"), forget_runs[1]


def test_the_trajectory_page_draws_the_stored_prediction_and_scores_it_against_the_warm_oracles(
        monkeypatch, forget_runs):
    root, run_id = forget_runs
    at = page(monkeypatch, root, "trajectory", run=run_id)
    assert not at.exception, at.exception
    traces = {t["name"]: t for t in chart(at, PCA)["data"]}
    film, pred = traces["trajectory (Θ₃ → Θ0)"], traces[api.method_label("taskvector")]  # by its label
    assert len(pred["x"]) == 3 and pred["x"][0] == film["x"][-1]  # Θ0, ×2, ×4: the film continued past Θ0
    assert any(name.startswith("warm oracles") for name in traces)  # beside the real continuation
    # The table's numbers are the retrodiction scores of the stored files, read here on their own.
    run, _, traj = open_forget_run(RunStore(root), run_id)
    preds = read(*run.read_tensors("pred-taskvector.safetensors"), "pred-taskvector.safetensors",
                 "predictions")[0]["predictions"]
    one_group = {n: "fc" for n, g in traj.groups.items() if g in GROUPS}  # every predicted weight at once, as shown
    (table,) = [d.value for d in at.dataframe if "cosine" in d.value.columns]
    rows = table[table["method"] == api.method_label("taskvector")]  # by its label
    assert list(rows["scale"]) == ["×2", "×4"]
    for k, (_, row) in enumerate(rows.iterrows()):
        (want,) = score(preds[k], traj.warm.states[k], None, traj.states[0], one_group)[:1]
        assert row["rel. error"] == pytest.approx(want["rel_error"], rel=1e-9)
        assert row["cosine"] == pytest.approx(want["cosine"], rel=1e-9)
    headline = at.subheader[0].value.replace("\\", "")
    nearest = api.continuation_headline([{"method": "taskvector", "scale": 4.0, "rel_error": rows["rel. error"].iloc[1],
                                      "cosine": 0.0}] + [{"method": "control", "scale": 4.0, "cosine": 0.0,
                                                          "rel_error": table["rel. error"].iloc[-1]}])
    assert headline.startswith("The film ") and headline.endswith(nearest)
    assert "At ×4, TaskVector landed nearest the warm oracle" in nearest and "control film" in nearest


def test_the_predict_form_runs_on_a_forget_run_and_its_prediction_appears(monkeypatch, forget_runs, tmp_path):
    runs, run_id = copied(forget_runs, tmp_path)
    at = page(monkeypatch, runs, "trajectory", run=run_id)
    assert not at.exception, at.exception
    at.selectbox(key="traj-forget-pred-method").set_value("expfit")
    at.select_slider(key="traj-forget-pred-k").set_value(2)
    at.checkbox(key="traj-forget-pred-dc").check().run()  # the control film allows drift correction
    assert any(t.startswith("Stores ExpFit") and "drift correction at ×2, ×4" in t for t in texts(at))  # by label
    at.button(key="traj-forget-pred-go").click().run()
    assert not at.exception, at.exception
    status = wait_for(runs, at.session_state[f"predict-job-{run_id}"], status_of=api.predict_status)
    assert status["state"] == "done", status
    at.run()
    assert not at.exception, at.exception
    assert any(f"Stored the {api.method_label('expfit+dc')} predictions (×2, ×4) in this run." in t for t in texts(at))
    names = [t["name"] for t in chart(at, PCA)["data"]]
    assert api.method_label("expfit+dc") in names and api.method_label("taskvector") in names
    (table,) = [d.value for d in at.dataframe if "cosine" in d.value.columns]
    assert list(table[table["method"] == api.method_label("expfit+dc")]["scale"]) == ["×2", "×4"]


def test_the_runs_page_offers_the_predict_form_and_the_stored_predictions(monkeypatch, forget_runs):
    root, run_id = forget_runs
    at = page(monkeypatch, root, "runs", run=run_id)
    assert not at.exception, at.exception
    assert at.button(key="runs-forget-pred-go") and at.checkbox(key="runs-forget-pred-dc")
    assert [o for o in at.selectbox(key="runs-forget-net").options] == ["TaskVector ×2", "TaskVector ×4"]
    headline = api.stored_headline(root, run_id)
    assert "Stored predictions: TaskVector;" in headline and "Predict form" not in headline
    assert f"**{headline}**" in [m.value.replace("\\", "") for m in at.markdown]


def test_a_forget_run_without_predictions_says_how_to_make_them(tmp_path):
    run_id = record_forgetting(tiny_config(), RunStore(tmp_path))
    headline = api.stored_headline(tmp_path, run_id)
    assert headline.startswith("The film ") and "Predict form (Trajectory or Runs page) or `predict --run`" in headline


def test_a_pred_file_whose_bytes_changed_is_left_out_with_one_warning_and_the_film_still_shows(
        monkeypatch, forget_runs, tmp_path, capsys):
    """A stored prediction is an add-on to the film: one whose bytes changed made the whole run "damaged" and hid the
    film. Now the film and its warm oracles show, the prediction is left out with one warning naming its file, and
    ``runs show`` still reports the damage (exit 2); predicting again replaces the file and the warning goes."""
    runs, run_id = copied(forget_runs, tmp_path)
    path = runs / run_id / "pred-taskvector.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    assert api.damage(runs, run_id) is None  # the run itself reads
    at = page(monkeypatch, runs, "trajectory", run=run_id)
    assert not at.exception, at.exception
    assert not at.error
    (warning,) = [w.value.replace("\\", "") for w in at.warning if "cannot be read" in w.value]
    assert "TaskVector" in warning and "pred-taskvector.safetensors" in warning and "checksum" in warning
    names = [t["name"] for t in chart(at, PCA)["data"]]
    assert "trajectory (Θ₃ → Θ0)" in names and any(n.startswith("warm oracles") for n in names)
    assert api.method_label("taskvector") not in names
    assert main(["runs", "show", run_id, "--runs-dir", str(runs)]) == 2
    assert "pred-taskvector.safetensors" in capsys.readouterr().err
    assert main(["predict", "--run", run_id, "--method", "taskvector", "--steps", "2", "--runs-dir", str(runs),
                 "--quiet"]) == 0
    at = page(monkeypatch, runs, "trajectory", run=run_id)
    assert not [w for w in at.warning if "cannot be read" in w.value]
    assert api.method_label("taskvector") in [t["name"] for t in chart(at, PCA)["data"]]


def test_a_pred_file_that_does_not_fit_the_film_is_left_out_with_one_warning(monkeypatch, forget_runs, tmp_path):
    runs, run_id = copied(forget_runs, tmp_path)
    store = RunStore(runs)
    run, _, traj = open_forget_run(store, run_id)
    wrong = {n: t for n, t in traj.states[0].items() if n != next(iter(traj.states[0]))}  # one tensor short
    save_predictions(run, "taskvector", [wrong], "a film of another network", False)  # the store's own writer
    store.touch(run_id)
    sw = api.load_seed_weights(runs, run_id, 0)
    assert "taskvector" not in sw.predictions and list(sw.damaged) == ["taskvector"]
    assert "pred-taskvector.safetensors" in sw.damaged["taskvector"] and "\n" not in sw.damaged["taskvector"]
    at = page(monkeypatch, runs, "trajectory", run=run_id)
    assert not at.exception, at.exception
    (warning,) = [w.value.replace("\\", "") for w in at.warning if "cannot be read" in w.value]
    assert "pred-taskvector.safetensors" in warning


def test_imported_and_forget_runs_share_one_checked_reader(tmp_path):
    """The same damage is named in the same words whichever kind of run holds it."""
    runs = tmp_path / "runs"
    assert main(["import", *map(str, film_of(tmp_path / "film", base_states(3))), "--kind", "forgetting",
                 "--runs-dir", str(runs), "--quiet"]) == 0
    (info,) = RunStore(runs).list_runs(kind="imported")
    run, _, film = open_imported_run(RunStore(runs), info.id)
    bad = {n: torch.full_like(t, float("nan")) if t.is_floating_point() else t for n, t in film.states[0].items()}
    save_predictions(run, "expfit", [bad], "not finite", False)
    weights = api.load_imported(runs, info.id).weights
    assert "expfit" not in weights.predictions
    assert re.search(r"pred-expfit\.safetensors: stage 1/.*NaN or infinite", weights.damaged["expfit"])
    with pytest.raises(RunStoreError, match=r"pred-expfit\.safetensors: stage 1/.*NaN or infinite"):
        stored_predictions(RunStore(runs).open(info.id), film.states[0])  # the strict reader, for the library


def test_present_steps_through_the_stored_predictions_beside_the_warm_oracles(monkeypatch, forget_runs):
    """A forget run with a stored prediction: the predictions step draws it past Θ0, and the warm-oracle step sets it
    beside the film's real continuation under the sentence naming the nearest one."""
    root, run_id = forget_runs
    at = page(monkeypatch, root, "present", run=run_id, step="3")
    assert not at.exception, at.exception
    assert at.header[0].value.replace("\\", "") == "Running the film backwards: TaskVector continues it past Θ0."
    (spec,) = [c for c in charts_of(at)]
    assert api.method_label("taskvector") in [t["name"] for t in spec["data"]]
    at = page(monkeypatch, root, "present", run=run_id, step="4")
    assert not at.exception, at.exception
    (spec,) = [c for c in charts_of(at)]
    names = [t["name"] for t in spec["data"]]
    assert api.method_label("taskvector") in names and any(n.startswith("warm oracles") for n in names), names
    scores = api.continuation_scores(api.load_seed_weights(root, run_id, 0), read_r(root, run_id), None)
    assert at.header[0].value.replace("\\", "") == api.continuation_headline(scores).replace("\\", "")


def charts_of(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def read_r(root, run_id) -> float:
    return float(RunStore(root).info(run_id).config["r"])


def test_the_drift_correction_check_reads_the_control_films_length_and_no_tensor(monkeypatch, forget_runs, tmp_path):
    root, run_id = forget_runs
    store = RunStore(root, create=False)
    control = open_forget_run(store, run_id)[2].control
    assert film_length(store.open(run_id), "control") == len(control.states) >= 3  # the header says what is stored

    def refuse(*_args, **_kw):
        raise AssertionError("the check loaded tensors")

    no_control = record_forgetting(tiny_config(warm="off"), RunStore(tmp_path / "runs"))
    for name in ("read_tensors", "open_snapshots"):
        monkeypatch.setattr(Run, name, refuse)
    monkeypatch.setattr(predictrun, "open_forget_run", refuse)
    predictor = check_predict_request(store, run_id, "expfit", 2, True, {"q_max": 1.5})
    assert "q ≤ 1.5" in predictor.describe()  # built once, with the options
    assert film_length(RunStore(tmp_path / "runs").open(no_control), "control") == 0
    with pytest.raises(KnowError) as caught:
        check_predict_request(RunStore(tmp_path / "runs"), no_control, "expfit", 2, True)
    assert str(caught.value) == (f"run {no_control} has no control film long enough for drift correction (recorded "
                                 "with warm oracles off, or before control films existed)")
