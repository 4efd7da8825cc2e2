"""``import know_core as know``: the notebook library over films, checked against the CLI and the pages' own code on
real artefacts (``torch.save`` state dicts, stored forget and experiment runs), and the example notebook executed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import plotly.graph_objects as go
import pytest
import torch
from conftest import REPO
from experiment_helpers import tiny_experiment

import know_core as know
import know_core.api.library as library
from know_core.api import load_forget_run, load_seed_weights, method_label, pca_view
from know_core.cli import main
from know_core.common.errors import KnowError
from know_core.engine.extrapolate import extrapolate
from know_core.experiment.backtest import backtest_weights
from know_core.imports.checkpoints import ImportFailed
from know_core.predictors import get_predictor
from know_core.store.legacy import read
from know_core.store.runstore import RunStore


def _film_files(folder: Path, count: int = 5) -> list[Path]:
    """``count`` checkpoints of a small MLP along a few SGD steps, saved with torch.save (earliest first)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    paths = []
    for i in range(count):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        paths.append(folder / f"step-{i}.pt")
        torch.save({"state_dict": model.state_dict()}, paths[-1])
    return paths


@pytest.fixture
def film_files(tmp_path) -> list[Path]:
    return _film_files(tmp_path)


def test_the_package_stays_cheap_and_reads_the_library_on_first_use():
    code = "import sys, know_core.common.errors; print('know_core.api.library' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]  # a submodule's import (the worker, the CLI) does not pay for the library
    assert know.Film is library.Film and know.open_run is library.open_run and "Film" in dir(know)
    with pytest.raises(AttributeError, match="no attribute 'Flim'"):
        know.Flim  # noqa: B018


def test_a_film_from_checkpoints_predicts_what_the_cli_stores(capsys, tmp_path, film_files):
    film = know.Film.from_checkpoints(film_files, kind="training")
    assert len(film) == 5 and film.kind == "training"
    assert film.groups == {"0.weight": "fc", "0.bias": "bias", "2.weight": "fc", "2.bias": "bias"}
    assert torch.equal(film.states[0]["2.weight"], torch.load(film_files[-1])["state_dict"]["2.weight"])  # Θ0 latest
    predicted = film.predict("taskvector", scales=(2, 8))
    assert sorted(predicted) == [2.0, 8.0]
    runs = tmp_path / "runs"
    assert main(["import", *map(str, film_files), "--kind", "training", "--runs-dir", str(runs), "--quiet"]) == 0
    run_id = next(line.split()[2] for line in capsys.readouterr().out.splitlines() if line.startswith("stored run"))
    assert main(["predict", "--run", run_id, "--method", "taskvector", "--steps", "3", "--runs-dir", str(runs)]) == 0
    run = RunStore(runs, create=False).open(run_id)
    cli_preds = read(*run.read_tensors("pred-taskvector.safetensors"), "pred-taskvector.safetensors",
                     "predictions")[0]["predictions"]
    for scale, k in ((2.0, 1), (8.0, 3)):
        for name, tensor in cli_preds[k - 1].items():
            assert torch.equal(predicted[scale][name], tensor), (scale, name)
    # the same run opened as a film holds the film and the CLI's predictions
    opened = know.open_run(run_id, runs_dir=runs)
    assert [torch.equal(a["0.weight"], b["0.weight"]) for a, b in zip(opened.states, film.states)] == [True] * 5
    assert sorted(opened.predictions["taskvector"]) == [2.0, 4.0, 8.0]


def test_predict_refuses_what_it_cannot_do_in_one_line(film_files):
    film = know.Film.from_checkpoints(film_files)
    for scales, words in (((3,), "scale 3 is not"), ((2, 2048),  "scale 2048 is not"), ((), "at least one"),
                          (("x",), "scale 'x' is not")):
        with pytest.raises(know.FilmError, match=words) as exc:
            film.predict("taskvector", scales=scales)
        assert "\n" not in str(exc.value)
    with pytest.raises(KnowError, match="no option 'nope'"):
        film.predict("taskvector", nope=1)
    with pytest.raises(KnowError):
        film.predict("no-such-method")
    with pytest.raises(ImportFailed, match="at least 2 checkpoints"):
        know.Film.from_checkpoints(film_files[:1])


def test_backtest_gives_the_backtest_modules_figures_and_notes_what_cannot_run(film_files):
    film = know.Film.from_checkpoints(film_files)
    bt = film.backtest(["naive", "taskvector", "known"])
    assert set(bt.notes) == {"known"} and "needs at least 5" in bt.notes["known"]  # 4 visible stages
    assert bt.rel_error("naive", "fc") == pytest.approx(1.0)  # keeping Θ1 is the naive answer, by definition
    expected, _ = backtest_weights(_Traj(film.states, film.groups), get_predictor("taskvector"), 1, "taskvector")
    got = [r for r in bt.rows if r.method == "taskvector"]
    assert got == expected and len(got) == 2 + 4  # 2 groups, 4 parameters
    frame = bt.frame()
    assert list(frame["group"]) == ["fc", "bias", "fc", "bias"] and "rel. error" in str(bt)
    assert len(film.backtest(["expfit"], steps=2).rows) == 6


class _Traj:
    def __init__(self, states, groups):
        self.states, self.groups = states, groups


def test_pca_and_plot_draw_the_film_and_its_predictions(tmp_path, film_files):
    film = know.Film.from_checkpoints(film_files)
    film.predict("expfit", scales=(2, 4))
    view = film.pca()
    assert [p["label"] for p in view.points] == ["Θ0", "Θ1", "Θ2", "Θ3", "Θ4", "expfit ×2", "expfit ×4"]
    assert 0.9 < sum(view.explained) <= 1 + 1e-9 and view.explained == sorted(view.explained, reverse=True)
    assert view.frame().shape[0] == 7
    fig = film.plot()
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["trajectory (Θ4 → Θ0)", method_label("expfit")]  # by label, as the pages
    assert list(fig.data[1].x) == [view.points[0]["pc1"], view.points[5]["pc1"], view.points[6]["pc1"]]
    fig.write_html(tmp_path / "film.html")
    assert (tmp_path / "film.html").stat().st_size > 1000
    curves = film.plot("curves", n=3)
    assert len(curves.data) == 3 * 2  # per sampled weight: the window and expfit's rollout
    with pytest.raises(know.FilmError, match="plot 'bars'"):
        film.plot("bars")


def test_save_then_export_round_trips_through_load_state_dict(tmp_path, film_files):
    film = know.Film.from_checkpoints(film_files, kind="training")
    predicted = film.predict("taskvector", scales=(2, 4))
    with pytest.raises(know.FilmError, match="call film.save"):
        film.export("taskvector", 4, tmp_path / "early")
    run_id = film.save(tmp_path / "runs", name="mine")
    assert RunStore(tmp_path / "runs").info(run_id).kind == "imported"
    out = film.export("taskvector", "×4", tmp_path / "x4")
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    model.load_state_dict(torch.load(out / "step-4.pt", weights_only=True)["state_dict"], strict=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in predicted[4.0].items())
    with pytest.raises(KnowError, match="exists"):  # nothing overwritten
        film.export("taskvector", 4, tmp_path / "x4")
    # a prediction made after saving goes to the same run
    film.predict("expfit", scales=(2,))
    assert film.save() == run_id
    assert sorted(know.open_run(run_id, runs_dir=tmp_path / "runs").predictions) == ["expfit", "taskvector"]


def test_a_forget_run_opens_lazily_with_its_warm_and_control_films(stored_run):
    root, run_id = stored_run
    film = know.open_run(run_id, runs_dir=root)
    assert film._loaded is None and film.run_kind == "forget"  # nothing read until used
    traj = load_forget_run(root, run_id).trajectory
    assert len(film) == len(traj.states) and film.groups == traj.groups
    assert all(torch.equal(a[k], b[k]) for a, b in zip(film.states, traj.states) for k in a)
    predicted = film.predict("naive", scales=(2,))
    assert torch.equal(predicted[2.0]["0.weight"], extrapolate(traj.states, traj.groups, get_predictor("naive"),
                                                               1)[0]["0.weight"])
    kinds = {p["kind"] for p in film.pca().points}
    assert "trajectory" in kinds and (traj.warm is None or "warm" in kinds)
    with pytest.raises(know.FilmError, match="forget run"):
        film.export("naive", 2, root / "never")


def test_an_experiment_seed_gives_the_trajectory_pages_pca(tmp_path):
    from know_core.jobs.lifecycle import record_experiment

    store = RunStore(tmp_path / "runs")
    run_id = record_experiment(tiny_experiment(), store)
    film = know.open_run(run_id, runs_dir=tmp_path / "runs")
    assert film.seed == 0 and film.r == 0.5
    page_points, page_pca = pca_view(load_seed_weights(tmp_path / "runs", run_id, 0), 0.5, None, k=3)
    view = film.pca()
    assert view.points == page_points and torch.equal(view.pca.coords, page_pca.coords)
    assert {t.name for t in film.plot().data} >= {method_label(m) for m in ("taskvector", "expfit", "oracle")}
    with pytest.raises(know.FilmError, match="no seed 7"):
        know.open_run(run_id, runs_dir=tmp_path / "runs", seed=7)
    film.predict("naive", scales=(2,))
    with pytest.raises(know.FilmError, match="is an experiment"):
        film.save()


def test_open_run_names_a_missing_run_in_one_line(tmp_path):
    RunStore(tmp_path / "runs")
    with pytest.raises(KnowError, match="no run") as exc:
        know.open_run("20250101-000000-forget-abcdef", runs_dir=tmp_path / "runs")
    assert "\n" not in str(exc.value)


def test_the_example_notebook_runs_headless(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("KNOW_EXAMPLE_OUT", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(REPO / "examples" / "film_library.ipynb", as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")  # committed without outputs
    # the kernel runs in the repository (as the CLI tests' subprocesses do), so it imports this know_core
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(REPO)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert (tmp_path / "film.html").stat().st_size > 1000
    exported = torch.load(tmp_path / "taskvector-x8" / "epoch-4.pt", weights_only=True)
    assert set(exported) == {"0.weight", "0.bias", "2.weight", "2.bias"}
