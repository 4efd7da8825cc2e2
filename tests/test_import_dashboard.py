"""Imported films on the dashboard: Trajectory, Compare and Runs open an imported run (real torch.save checkpoints,
imported and predicted with the CLI) and say "no source accuracy" where it has none; the Runs page's import form
shows the inferred group table before anything is stored; an uploaded zip is refused when it climbs out, is absolute,
holds a symlink or is over the limit; the background import job stores the run, or nothing."""

from __future__ import annotations

import json
import os
import stat
import time
import zipfile
from pathlib import Path

import pytest
import torch
from page_helpers import charts, page, texts
from test_import import base_states, cli, film_of, run_id_of

from know_core.api import (
    ImportFailed,
    import_status,
    inspect_import,
    load_imported,
    method_label,
    start_import,
    unpack_upload,
)
from know_core.cli import main
from know_core.imports.film import read_film, store_film
from know_core.imports.groups import group_table
from know_core.store.runstore import RunStore

NO_ACCURACY = "No source accuracy or loss for this imported network"


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """(runs dir, an imported run predicted by taskvector ×2 ×4 with no --eval, the same film with metrics)."""
    root = tmp_path_factory.mktemp("imported-pages")
    runs = root / "runs"
    paths = film_of(root / "film", base_states(4))
    assert main(["import", *map(str, paths), "--kind", "forgetting", "--runs-dir", str(runs), "--quiet",
                 "--name", "my film"]) == 0
    run_id = RunStore(runs).list_runs(kind="imported")[0].id
    assert main(["predict", "--run", run_id, "--method", "taskvector", "--steps", "2", "--runs-dir", str(runs)]) == 0
    film = read_film([str(p) for p in paths], "forgetting")
    metrics = [{"loss": 1.0 + 0.1 * i, "acc": 0.9 - 0.1 * i} for i in range(4)]
    evaluated = store_film(RunStore(runs), film, "with eval", metrics=metrics, eval_spec="mine:score")
    return runs, run_id, evaluated, paths


def test_trajectory_opens_an_imported_run_and_says_it_has_no_source_accuracy(monkeypatch, imported):
    runs, run_id, _, _ = imported
    at = page(monkeypatch, runs, "trajectory", run=run_id)
    assert not at.exception, at.exception
    shown = texts(at)
    assert any(NO_ACCURACY in t for t in shown)
    spec = next(s for s in charts(at) if "Imported film and predictions" in s["layout"]["title"]["text"])
    names = [t["name"] for t in spec["data"]]
    assert names[0].startswith("imported film") and "TaskVector" in names  # methods by their labels
    assert len(spec["data"][0]["x"]) == 4 and len(spec["data"][1]["x"]) == 3  # Θ3 … Θ0; Θ0, ×2, ×4
    at.selectbox(key="traj-imp-view").set_value("Per-weight curves").run()
    assert not at.exception, at.exception
    assert any("rollout" in (t.get("name") or "") for s in charts(at) for t in s["data"])


def test_trajectory_draws_the_eval_hooks_curve_where_the_import_had_one(monkeypatch, imported):
    runs, _, evaluated, _ = imported
    at = page(monkeypatch, runs, "trajectory", run=evaluated)
    assert not at.exception, at.exception
    assert not any(NO_ACCURACY in t for t in texts(at))
    spec = next(s for s in charts(at) if "from the --eval hook" in s["layout"]["title"]["text"])
    assert spec["data"][1]["y"] == pytest.approx([0.9, 0.8, 0.7, 0.6])


def test_compare_backtests_an_imported_run_per_group_and_layer(monkeypatch, imported):
    runs, run_id, _, _ = imported
    at = page(monkeypatch, runs, "compare", runs=run_id)
    assert not at.exception, at.exception
    assert any("no target task" in t for t in texts(at))
    # the page's answer says what the backtest found, as it does for a forget run
    assert any(t.startswith("**Hiding Θ0 and predicting it back") and "keeping Θ1" in t for t in texts(at))
    groups = at.dataframe[0].value
    assert set(groups.iloc[:, 0]) == {method_label("taskvector"), method_label("expfit")}  # by their labels
    assert set(groups.iloc[:, 1]) == {"fc", "bias"}
    spec = next(s for s in charts(at) if "Backtest per layer" in s["layout"]["title"]["text"])
    assert {"0.weight", "2.weight"} <= set(spec["data"][0]["x"])


def test_runs_shows_an_imported_run_and_exports_its_prediction(monkeypatch, imported, tmp_path):
    runs, run_id, _, _ = imported
    at = page(monkeypatch, runs, "runs", run=run_id)
    assert not at.exception, at.exception
    assert any(NO_ACCURACY in t for t in texts(at))
    out = tmp_path / "export"
    at.text_input(key="runs-imp-out").set_value(str(out)).run()
    at.button(key="runs-imp-export").click().run()
    assert not at.exception, at.exception
    sidecar = json.loads((out / "know-export.json").read_text())
    assert sidecar["method"] == "taskvector" and sidecar["scale"] == 2.0
    state = torch.load(out / "c0.pt", weights_only=True)
    expected = load_imported(runs, run_id).weights.predictions["taskvector"][2.0]
    assert all(torch.equal(state[k], expected[k]) for k in expected)


def test_the_import_form_shows_the_inferred_groups_before_storing(monkeypatch, imported):
    runs, _, _, paths = imported
    before = {r.id for r in RunStore(runs).list_runs()}
    at = page(monkeypatch, runs, "runs")
    at.text_area(key="runs-imp-paths").set_value(str(paths[0].parent)).run()
    assert not at.exception, at.exception
    files, shown = at.dataframe[0].value, at.dataframe[1].value  # the form comes before the list of runs
    film = read_film([str(paths[0].parent)], "forgetting")
    assert list(shown["group"]) == [row["group"] for row in group_table(film.shapes, film.groups)]
    assert list(files["stage"]) == ["Θ0", "Θ1", "Θ2", "Θ3"]
    assert {r.id for r in RunStore(runs).list_runs()} == before  # a dry run: nothing stored


# --- zip uploads ------------------------------------------------------------------------------------------------------


def zipped(members: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    path = Path(f"/tmp/know-test-{time.monotonic_ns()}.zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    data = path.read_bytes()
    path.unlink()
    return data


def film_members(tmp_path: Path) -> dict[str, bytes]:
    return {f"film/{p.name}": p.read_bytes() for p in film_of(tmp_path / "src", base_states(3))}


def uploads_empty(runs: Path) -> bool:
    folder = runs / ".uploads"
    return not folder.exists() or not list(folder.iterdir())


@pytest.mark.parametrize("bad, words", [
    ({"../evil.pt": b"x"}, "climbs out of its folder with '..'"),
    ({"film/../../evil.pt": b"x"}, "climbs out of its folder with '..'"),
    ({"/etc/evil.pt": b"x"}, "has an absolute path"),
])
def test_an_upload_that_climbs_out_or_is_absolute_is_refused(tmp_path, bad, words):
    runs = tmp_path / "runs"
    with pytest.raises(ImportFailed, match=words):
        unpack_upload(runs, "film.zip", zipped({**film_members(tmp_path), **bad}))
    assert uploads_empty(runs) and not (tmp_path / "evil.pt").exists()


def test_an_upload_with_a_symlink_is_refused(tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(ImportFailed, match="is a symbolic link"):
        unpack_upload(runs, "film.zip", zipped(film_members(tmp_path), links=("film/link.pt",)))
    assert uploads_empty(runs)


def test_an_upload_over_the_limit_is_refused(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    data = zipped(film_members(tmp_path))
    monkeypatch.setenv("KNOW_IMPORT_MAX_MB", str(len(data) / 2 / (1 << 20)))
    with pytest.raises(ImportFailed, match="over the .* MB limit \\(KNOW_IMPORT_MAX_MB\\)"):
        unpack_upload(runs, "film.zip", data)
    assert uploads_empty(runs)
    bomb = zipped({"film/zeros.pt": bytes(4 << 20)})  # compresses to a few kB, unpacks to 4 MB
    monkeypatch.setenv("KNOW_IMPORT_MAX_MB", "1")
    with pytest.raises(ImportFailed, match="unpacks to 4.0 MB, over the 1 MB limit"):
        unpack_upload(runs, "film.zip", bomb)
    assert uploads_empty(runs)
    monkeypatch.setenv("KNOW_IMPORT_MAX_MB", "lots")
    with pytest.raises(ImportFailed, match="KNOW_IMPORT_MAX_MB='lots'"):
        unpack_upload(runs, "film.zip", data)


def test_a_good_upload_is_imported_by_the_background_job_and_then_removed(tmp_path):
    runs = tmp_path / "runs"
    folder, upload = unpack_upload(runs, "film.zip", zipped(film_members(tmp_path)))
    assert Path(folder).name == "film"
    preview = inspect_import([folder], "training")
    assert preview.stages == 3 and [f["stage"] for f in preview.files] == ["Θ0", "Θ1", "Θ2"]
    key = start_import(runs, [folder], "training", name="uploaded", cleanup=upload)
    status = wait(runs, key)
    assert status["state"] == "done", status
    info = RunStore(runs).info(status["run_id"])
    assert info.kind == "imported" and info.name == "uploaded"
    assert not Path(upload).exists()


def test_a_failing_background_import_stores_nothing(tmp_path):
    runs = tmp_path / "runs"
    paths = film_of(tmp_path / "film", base_states(2))
    key = start_import(runs, [str(p) for p in paths], "forgetting", eval_spec="no_such_module_here:score",
                       eval_timeout=5)
    status = wait(runs, key)
    assert status["state"] == "failed" and "cannot load no_such_module_here:score" in status["error"], status
    assert not RunStore(runs).list_runs()
    with pytest.raises(ImportFailed, match="expected module:function"):
        start_import(runs, [str(paths[0])], "forgetting", eval_spec="not a hook")


def wait(runs: Path, key: str, limit: float = 90.0, status_of=import_status) -> dict:
    """The job's status once it is no longer running (an import job's, or another folder job's with ``status_of``)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = status_of(runs, key)
        if status["state"] != "running":
            return status
        time.sleep(0.3)
    raise AssertionError(f"job {key} still running after {limit} s: {status}")


def test_the_cli_import_and_the_page_agree_on_the_run(capsys, tmp_path):
    runs = tmp_path / "runs"
    code, out, err = cli(capsys, "import", *film_of(tmp_path / "f", base_states(3)), "--kind", "training",
                         "--runs-dir", runs, "--quiet")
    assert code == 0, err
    run = load_imported(runs, run_id_of(out))
    assert run.metrics is None and not run.has_accuracy and run.steps == {}
    assert len(run.weights.stages) == 3 and run.weights.oracles == {}


def test_present_names_an_imported_run_for_what_it_is(monkeypatch, tmp_path):
    """Present steps through experiment and forget runs; a link to an imported film says so (and where the film is
    shown) rather than that no such run exists."""
    from conftest import tiny_config

    from know_core.jobs.lifecycle import record_forgetting

    runs = tmp_path / "runs"
    paths = film_of(tmp_path / "film", base_states(4))
    assert main(["import", *map(str, paths), "--kind", "forgetting", "--runs-dir", str(runs), "--quiet"]) == 0
    run_id = RunStore(runs).list_runs(kind="imported")[0].id
    record_forgetting(tiny_config(), RunStore(runs))
    at = page(monkeypatch, runs, "present", run=run_id)
    assert not at.exception, at.exception
    assert any("is an imported film" in t and "Trajectory" in t for t in texts(at)), texts(at)
    assert not any("There is no finished run" in t for t in texts(at))


def test_the_import_form_takes_an_order_and_group_overrides_like_the_cli(monkeypatch, imported, tmp_path):
    """The form's Order and its JSON box reach the dry run (and the job) as --order and --groups do; a bad box is
    one line naming it, and nothing is shown as if it were fine."""
    runs, _, _, paths = imported
    folder = tmp_path / "film"
    copies = film_of(folder, [torch.load(p, weights_only=True) for p in paths])
    for age, path in enumerate(reversed(copies)):  # c3 oldest … c0 newest: mtime order is the reverse of name order
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    at = page(monkeypatch, runs, "runs")
    at.text_area(key="runs-imp-paths").set_value(str(folder)).run()
    at.selectbox(key="runs-imp-order").set_value("mtime").run()
    at.text_area(key="runs-imp-groups-json").set_value('{"0.weight": "conv"}').run()
    assert not at.exception, at.exception
    files, shown = at.dataframe[0].value, at.dataframe[1].value
    assert [Path(p).name for p in files["path"]] == ["c3.pt", "c2.pt", "c1.pt", "c0.pt"]
    assert "0.weight" in shown[shown["group"] == "conv"]["examples"].iloc[0]
    at.text_area(key="runs-imp-groups-json").set_value('{"0.weight": "kernels"}').run()
    assert any("group overrides" in e.value and "'kernels'" in e.value for e in at.error), [e.value for e in at.error]
    assert len(at.dataframe) == 0 or "group" not in at.dataframe[0].value.columns  # no preview under a bad box
    at.text_area(key="runs-imp-groups-json").set_value("{not json").run()
    assert any("group overrides" in e.value and "not readable JSON" in e.value for e in at.error)  # (escaped)


def test_a_background_import_stores_the_group_overrides(tmp_path):
    runs = tmp_path / "runs"
    paths = film_of(tmp_path / "film", base_states(3))
    key = start_import(runs, [str(p) for p in paths], "forgetting", groups=[("0.weight", "conv")])
    status = wait(runs, key)
    assert status["state"] == "done", status
    assert load_imported(runs, status["run_id"]).weights.groups["0.weight"] == "conv"
    preview = inspect_import([str(p) for p in paths], "forgetting", groups=[("0.weight", "conv")])
    assert any(row["group"] == "conv" and "0.weight" in row["examples"] for row in preview.table)
