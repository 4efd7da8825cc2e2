"""Sweeps: the grid's bad inputs, the tidy table, the same table whatever the executor, resume after an interruption,
and a sweep folder from an incompatible version."""

from __future__ import annotations

import json

import pytest
from sweep_helpers import assert_same_table, run_tiny, tiny_spec

from know_core.cli import main
from know_core.common.errors import Cancelled, ConfigError
from know_core.executors import make_executor
from know_core.store.runstore import RunStore
from know_core.sweep import create_sweep, parse_axis, parse_seeds, read_sweep, run_sweep
from know_core.sweep.table import TABLE_CSV


@pytest.fixture(scope="module")
def inline_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("inline")
    return root, *run_tiny(root, make_executor("inline"))


def test_axes_and_seeds_parse_by_the_fields_type():
    assert parse_axis("source.r=0.33,0.5") == ("source.r", [0.33, 0.5])
    assert parse_axis("source.stages=3,5,7") == ("source.stages", [3, 5, 7])
    assert parse_axis("source.stage_budget=steps:50,epochs:3") == ("source.stage_budget", ["steps:50", "epochs:3"])
    assert parse_axis("scales=2 4,8") == ("scales", [[2.0, 4.0], [8.0]])
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]


@pytest.mark.parametrize("args, message", [
    (["--axis", "source.colour=1,2"], "unknown axis key 'source.colour'"),
    (["--axis", "source.r="], "axis source.r has an empty value"),
    (["--axis", "source.r=0.5,,0.7"], "axis source.r has an empty value"),
    (["--axis", "source.stages=three"], "axis source.stages: expected int, got 'three'"),
    (["--seeds", "5-2"], "seed range 5-2 runs backwards"),
    (["--seeds", "0-10000", "--axis", "source.r=0.5,0.7"], "more than 10000; add --yes"),
    (["--axis", "source.r=1.5"], "cell source.r=1.5: "),
    (["--what", "forgetting,dancing"], "--what takes some of"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "cannot reach a Ray cluster at 127.0.0.1:1"),
])
def test_bad_input_exits_2_with_one_line_and_records_nothing(tmp_path, capsys, args, message):
    runs = tmp_path / "runs"
    assert main(["sweep", "--runs-dir", str(runs), "--quiet", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not runs.exists() or not RunStore(runs).list_runs()


def test_the_table_has_a_row_per_cell_seed_method_and_scale(inline_sweep):
    root, sweep_id, table = inline_sweep
    assert set(table["source.stages"]) == {3, 4} and set(table["seed"]) == {0, 1}
    assert {"naive", "scratch", "taskvector", "shrink:taskvector", "expfit", "oracle"} <= set(table["method"])
    rows = table[(table.method == "taskvector") & (table.scale == 4.0)]
    assert len(rows) == 4 and (rows["k"] == 2).all()
    for col in ("target_acc", "vs_naive", "vs_shrink", "forgot", "strength", "backtest_fc", "warm_fc",
                "cost_total_s", "cost_pretrain_s"):
        assert col in table.columns, col
    naive = table[table.method == "naive"].set_index(["cell", "seed"])["target_acc"]
    tv = rows.set_index(["cell", "seed"])
    assert (tv["vs_naive"] - (tv["target_acc"] - naive.loc[tv.index])).abs().max() < 1e-12
    assert (root / sweep_id / TABLE_CSV).is_file()
    state = read_sweep(RunStore(root), sweep_id)
    assert all(u["status"] == "done" for u in state["units"].values())
    store = RunStore(root)
    assert store.info(sweep_id).status == "done"
    assert all(store.info(c["run_id"]).status == "done" and store.info(c["run_id"]).kind == "experiment"
               for c in state["cells"])  # each cell opens like any experiment run


def test_local_gives_the_same_table_as_inline(inline_sweep, tmp_path):
    _, _, table = inline_sweep
    assert_same_table(run_tiny(tmp_path, make_executor("local", 2))[1], table)


def test_an_interrupted_sweep_resumes_without_redoing_finished_units(inline_sweep, tmp_path):
    store = RunStore(tmp_path)
    sweep_id = create_sweep(store, tiny_spec(), "resumable")
    cancel = tmp_path / sweep_id / ".cancel"

    def stop_after_two(counts):
        if counts["finished"] >= 2:
            cancel.touch()

    with pytest.raises(Cancelled, match="2 of 4 units done"):
        run_sweep(store, sweep_id, make_executor("inline"), stop_after_two)
    assert store.info(sweep_id).status == "cancelled"
    state = read_sweep(store, sweep_id)
    finished = [k for k, u in state["units"].items() if u["status"] == "done"]
    assert len(finished) == 2
    seed_files = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/seeds/seed-*.json")}
    assert len(seed_files) == 2
    run_sweep(store, sweep_id, make_executor("local", 2))
    state = read_sweep(store, sweep_id)
    assert state["runs"][-1]["seeds"] == 2  # only the two unfinished seeds were handed to the executor
    assert all(state["units"][k]["status"] == "done" and state["units"][k]["attempts"] == 1 for k in finished)
    assert all(p.stat().st_mtime_ns == t for p, t in seed_files.items())  # not rewritten
    import pandas as pd

    assert_same_table(pd.read_parquet(tmp_path / sweep_id / "results.parquet"), inline_sweep[2])
    assert store.info(sweep_id).status == "done"


def test_a_sweep_from_an_incompatible_version_is_refused(tmp_path, capsys):
    store = RunStore(tmp_path)
    sweep_id = create_sweep(store, tiny_spec(seeds=[0]), "old")
    path = tmp_path / sweep_id / "sweep.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format": "know-sweep/0"}))
    store.mark(sweep_id, "failed", "interrupted")
    assert main(["sweep", "--resume", sweep_id, "--runs-dir", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "incompatible version" in err and "know-sweep/0" in err


def test_runs_list_shows_sweeps_and_report_summarises_cells(inline_sweep, capsys):
    root, sweep_id, _ = inline_sweep
    assert main(["runs", "list", "--runs-dir", str(root)]) == 0
    listing = capsys.readouterr().out
    assert sweep_id in listing and "sweep" in listing
    assert main(["report", str(root / sweep_id), "--markdown"]) == 0
    report = capsys.readouterr().out
    assert "source.stages=3" in report and "source.stages=4" in report and "taskvector" in report
    assert "95 %" in report


def test_a_cell_the_experiment_refuses_is_named_and_left_out(tmp_path):
    from dataclasses import replace

    spec = replace(tiny_spec(), axes=[("source.r", [0.5, 1.2])])
    cells = spec.cells()
    assert cells[0].error is None and "cell source.r=1.2" in cells[1].error and cells[1].config is None
    store = RunStore(tmp_path)
    state = read_sweep(store, create_sweep(store, spec, "partly"))
    assert state["cells"][1]["error"] and all(u["cell"] == "c000" for u in state["units"].values())
    with pytest.raises(ConfigError, match="cell source.r=1.2"):
        replace(spec, axes=[("source.r", [1.2])]).cells()


def test_a_unit_that_starts_right_after_a_write_shows_running_at_the_next_cancel_poll(tmp_path):
    import time

    from know_core.sweep.runner import _Driver

    store = RunStore(tmp_path)
    sweep_id = create_sweep(store, tiny_spec(), "watched")
    driver = _Driver(store, sweep_id, None, batch=False)
    key = driver.prepare()[0].key  # prepare writes sweep.json
    driver.listen(key, "running", None)  # within the second: held back
    assert read_sweep(store, sweep_id)["units"][key]["status"] == "pending"
    time.sleep(1.05)
    assert driver.should_stop() is False
    assert read_sweep(store, sweep_id)["units"][key]["status"] == "running"


def test_a_sweep_over_models_includes_the_vit(tmp_path):
    """vit_tiny works wherever a model works, a sweep included (its embeddings are kept from Θ0 by default)."""
    from experiment_helpers import tiny_experiment

    from know_core.sweep import SweepSpec

    spec = SweepSpec(tiny_experiment(), [("source.model", ["mlp", "vit_tiny"])], [0], ["forgetting", "backtest"])
    _, table = run_tiny(tmp_path, make_executor("inline"), spec)
    assert set(table["source.model"]) == {"mlp", "vit_tiny"}
    vit = table[(table["source.model"] == "vit_tiny") & (table["method"] == "taskvector")]
    assert len(vit) == 1 and vit["backtest_fc"].notna().all()


def test_seed_batched_cells_give_the_same_table_and_say_so(inline_sweep, tmp_path):
    store = RunStore(tmp_path)
    sweep_id = create_sweep(store, tiny_spec(), "unbatched")
    run_sweep(store, sweep_id, make_executor("inline"), batch=False)
    import pandas as pd

    unbatched = pd.read_parquet(tmp_path / sweep_id / "results.parquet")
    assert_same_table(unbatched, inline_sweep[2])  # the default (batched) run
    batched_state = read_sweep(RunStore(inline_sweep[0]), inline_sweep[1])
    assert all(c["batched"].startswith("batched: ") for c in batched_state["cells"])
    assert not any(c.get("batched") for c in read_sweep(store, sweep_id)["cells"])


def test_units_run_with_several_threads_are_not_batched_and_say_why(tmp_path):
    from know_core.sweep import runner

    store = RunStore(tmp_path)
    sweep_id = create_sweep(store, tiny_spec(), "threads")
    driver = runner._Driver(store, sweep_id, None, threads=2)  # run_sweep passes an inline executor's threads
    units = driver.prepare()
    assert [u.kind for u in units] == ["experiment-seed"] * 4
    assert all("2 threads" in c["batched"] for c in driver.state["cells"])


def test_resuming_a_sweep_that_is_still_running_is_refused(tmp_path, capsys):
    store = RunStore(tmp_path)
    sweep_id = create_sweep(store, tiny_spec(seeds=[0]), "live")  # its owner, this process, is alive
    assert main(["sweep", "--resume", sweep_id, "--runs-dir", str(tmp_path), "--quiet"]) == 2
    assert "still running" in capsys.readouterr().err
    assert all(u["status"] == "pending" for u in read_sweep(store, sweep_id)["units"].values())


def test_a_film_metric_counts_each_seeds_film_once(inline_sweep):
    from know_core.api import heatmap_data

    _, _, table = inline_sweep
    for metric in ("strength", "forgot"):
        heat = heatmap_data(table, "source.stages", "seed", metric)
        assert len(heat) == 4 and (heat["n"] == 1).all(), metric  # not once per method row
    by_method = heatmap_data(table, "source.stages", "method", "forgot")
    assert (by_method["n"] == 2).all()  # each method's column holds the two seeds' films
