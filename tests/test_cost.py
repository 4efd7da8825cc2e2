"""The cost ledger: seconds per phase as recorded, and the overhead / gain / break-even engine on synthetic numbers."""

import json
import math

import pytest
from conftest import REPO, tiny_config

from know_core.cli import main
from know_core.common.ledger import Ledger, phases_of
from know_core.engine.forgetting import run_forgetting
from know_core.experiment.cost import break_even, cost_table, fieller, meta_training_s, oracle_cost, seed_overhead


def test_a_phase_records_wall_cpu_and_no_gpu_on_the_cpu():
    ledger = Ledger("cpu")
    with ledger.phase("outer"):
        with ledger.phase("inner"):
            sum(i * i for i in range(200_000))  # CPU work: CPU seconds must see it
    ledger.start("open")
    ledger.stop("open")
    assert set(ledger) == {"outer_s", "inner_s", "open_s"}  # the legacy wall-only timings
    inner, outer = ledger.phases["inner"], ledger.phases["outer"]
    assert 0 < inner["wall_s"] <= outer["wall_s"] and inner["cpu_s"] > 0 and inner["gpu_s"] is None
    assert json.loads(json.dumps(ledger.record())) == ledger.record()


def test_a_phase_that_raises_is_still_recorded():
    ledger = Ledger()
    with pytest.raises(ZeroDivisionError), ledger.phase("boom"):
        1 / 0
    assert "boom" in ledger.phases


def test_on_cuda_a_phase_records_the_gpu_queue_time(monkeypatch):
    import torch

    class Event:  # stands in for torch.cuda.Event where no GPU is present: 250 ms between two records
        def __init__(self, enable_timing=False):
            assert enable_timing
            self.recorded = False

        def record(self):
            self.recorded = True

        def synchronize(self):
            assert self.recorded

        def elapsed_time(self, end):
            assert self.recorded and end.recorded
            return 250.0

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "Event", Event)
    ledger = Ledger("cuda")
    with ledger.phase("train"):
        pass
    assert ledger.phases["train"]["gpu_s"] == 0.25


def test_forgetting_runs_carry_the_ledger():
    traj, timings = run_forgetting(tiny_config())
    assert {"pretrain", "forgetting", "warm", "control"} <= set(timings.phases)
    assert timings["forgetting_s"] == timings.phases["forgetting"]["wall_s"] > 0
    assert all(e["cpu_s"] is not None for e in timings.phases.values())


def test_old_wall_only_records_stay_readable():
    flat = {"seed": 0, "forgetting_s": 10.0, "predict_s": 1.0, "oracles_s": 90.0}  # results.json per_seed, old
    assert phases_of(flat)["forgetting"] == {"wall_s": 10.0, "cpu_s": None, "gpu_s": None}
    assert "seed" not in phases_of(flat)
    summary = {"timings": {"pretrain_s": 3, "total_s": 5}}  # a forget run's summary.json, old
    assert phases_of(summary)["total"]["wall_s"] == 5.0
    new = {"timings": {"pretrain_s": 3}, "ledger": {"pretrain": {"wall_s": 3, "cpu_s": 6, "gpu_s": None}}}
    assert phases_of(new)["pretrain"]["cpu_s"] == 6.0


PHASES = {"pretrain": {"wall_s": 40.0, "cpu_s": 80.0, "gpu_s": None},
          "forgetting": {"wall_s": 10.0, "cpu_s": 20.0, "gpu_s": None},
          "control": {"wall_s": 5.0, "cpu_s": 10.0, "gpu_s": None},
          "predict": {"wall_s": 3.0, "cpu_s": 3.0, "gpu_s": None},
          "predict:known": {"wall_s": 2.0, "cpu_s": 2.0, "gpu_s": None},
          "oracles": {"wall_s": 300.0, "cpu_s": 600.0, "gpu_s": None},
          "oracle:2": {"wall_s": 100.0, "cpu_s": 200.0, "gpu_s": None}}


def test_overhead_counts_the_film_the_prediction_and_what_the_variant_needs():
    plain = seed_overhead(PHASES, "expfit")  # no per-method phase: all methods' prediction together
    assert plain["wall_s"] == 13.0 and plain["cpu_s"] == 23.0 and plain["prediction_shared"]
    dc = seed_overhead(PHASES, "known+dc", meta_share_s=100.0)
    assert dc["parts"] == {"forgetting": 10.0, "prediction": 3.0, "control film": 5.0, "meta-training": 100.0}
    assert dc["cpu_s"] is None  # the card gives wall seconds only
    known = seed_overhead(PHASES, "known")
    assert known["wall_s"] == 12.0 and not known["prediction_shared"]  # pre-training is not KNOW's overhead


def test_oracle_cost_per_scale_or_the_total_as_a_bound():
    assert oracle_cost(PHASES, 2.0) == {"wall_s": 100.0, "cpu_s": 200.0, "gpu_s": None, "exact": True}
    assert oracle_cost(PHASES, 4.0)["exact"] is False and oracle_cost(PHASES, 4.0)["wall_s"] == 300.0
    assert oracle_cost({}, 2.0) is None


def test_fieller_interval_holds_the_ratio_and_opens_when_the_denominator_is_noise():
    a = [0.010, 0.012, 0.011, 0.009, 0.013]
    b = [0.020, 0.022, 0.021, 0.019, 0.023]
    out = fieller(a, b)
    assert out["ratio"] == pytest.approx(0.011 / 0.021)
    lo, hi = out["ci95"]
    assert lo < out["ratio"] < hi and hi - lo < 0.2
    assert fieller(a, [0.02, -0.02, 0.01, -0.01, 0.001])["ci95"] is None
    assert fieller([0.01], [0.02])["ci95"] is None


def test_break_even_when_both_gains_are_real():
    gain = [0.010, 0.012, 0.011, 0.009, 0.013]  # +1.1 pt
    oracle_gain = [0.020, 0.022, 0.021, 0.019, 0.023]  # +2.1 pt
    out = break_even(20.0, 200.0, gain, oracle_gain)  # a tenth of the cost for about half the gain
    assert out["status"] == "break-even"
    assert out["n"] == pytest.approx(0.1 / (0.011 / 0.021))
    assert out["ci95"][0] < out["n"] < out["ci95"][1]
    dearer = break_even(2000.0, 200.0, gain, oracle_gain)
    assert dearer["n"] == pytest.approx(100 * out["n"])  # a hundredfold overhead: a hundredfold break-even


@pytest.mark.parametrize("gain, oracle_gain, status", [
    ([0.01, -0.01, 0.005, -0.004, 0.002], [0.02, 0.022, 0.021, 0.019, 0.023], "no break-even"),
    ([-0.01, -0.012, -0.011, -0.009, -0.013], [0.02, 0.022, 0.021, 0.019, 0.023], "no break-even"),
    ([0.01, 0.012, 0.011, 0.009, 0.013], [0.02, -0.02, 0.01, -0.01, 0.001], "no price"),
    ([0.01], [0.02], "one seed"),
])
def test_no_break_even_where_a_gain_is_not_distinguishable_from_zero(gain, oracle_gain, status):
    out = break_even(20.0, 200.0, gain, oracle_gain)
    assert out["status"] == status and out["why"]
    if out["ci95"]:
        assert math.isinf(out["ci95"][1])


def _results(timing_keys: dict[str, float], ledger: bool) -> dict:
    gains = {"naive": 0.0, "expfit": 0.011, "oracle": 0.021}
    rows = []
    for seed in range(4):
        rows.append({"method": "naive", "scale": 1.0, "seed": seed, "target_acc": 0.9 + seed / 100})
        rows.append({"method": "scratch", "scale": 1.0, "seed": seed, "target_acc": 0.8})
        for m in ("expfit", "oracle", "shrink:expfit"):
            jitter = (-1) ** seed * 0.001
            rows.append({"method": m, "scale": 2.0, "seed": seed,
                         "target_acc": 0.9 + seed / 100 + gains.get(m, 0.0) + jitter})
    per_seed = []
    for seed in range(4):
        entry = {"seed": seed, **{f"{k}_s": v for k, v in timing_keys.items()}}
        if ledger:
            entry["ledger"] = {k: {"wall_s": v, "cpu_s": 2 * v, "gpu_s": None} for k, v in timing_keys.items()}
        per_seed.append(entry)
    return {"rows": rows, "timings": {"total_s": 1.0, "per_seed": per_seed}}


def test_cost_table_on_a_run_with_the_ledger():
    table = cost_table(_results({"forgetting": 10.0, "predict": 1.0, "oracles": 300.0, "oracle:2": 100.0,
                                 "finetune": 40.0}, ledger=True))
    (row,) = table["rows"]  # expfit ×2 only: naive, scratch, oracle and the shrinkage control are not KNOW
    assert (row["method"], row["scale"], row["n"]) == ("expfit", 2.0, 4)
    assert row["overhead_s"] == 11.0 and row["overhead_cpu_s"] == 22.0 and row["oracle_s"] == 100.0
    assert row["oracle_exact"] and row["break_even"]["status"] == "break-even"
    assert row["break_even"]["n"] == pytest.approx(0.11 / (0.011 / 0.021), rel=0.05)
    assert table["has_cpu"] and table["finetune_per_task_s"] == pytest.approx(40.0 / 5)  # 5 fine-tuned rows a seed
    assert not any("wall seconds only" in n for n in table["notes"])


def test_cost_table_on_an_old_run_says_what_it_lacks():
    table = cost_table(_results({"forgetting": 10.0, "predict": 1.0, "oracles": 300.0}, ledger=False))
    (row,) = table["rows"]
    assert row["overhead_cpu_s"] is None and row["oracle_s"] == 300.0 and not row["oracle_exact"]
    notes = " ".join(table["notes"])
    assert "wall seconds only" in notes and "upper bound" in notes


def test_meta_training_seconds_from_the_card():
    card = {"time": {"collect_s": 600.0, "train_s": 80.0}, "data": {"collection": {"job_seconds": 1200.0}}}
    assert meta_training_s(card) == 1280.0
    assert meta_training_s({"time": {"collect_s": 600.0, "train_s": 80.0}}) == 680.0
    assert meta_training_s({}) is None and meta_training_s(None) is None


def test_report_cost_on_the_standard_reference(capsys):
    assert main(["report", str(REPO / "docs" / "standard-results.json"), "--cost"]) == 0
    out = capsys.readouterr().out
    assert "break-even" in out and "taskvector" in out and "wall seconds only" in out
    assert main(["report", str(REPO / "docs" / "standard-results.json"), "--cost", "--meta-uses", "-1"]) == 2


def test_an_experiment_records_the_ledger_and_the_scaling_page_shows_the_cost(tmp_path, monkeypatch):
    import json as json_

    from experiment_helpers import tiny_experiment
    from streamlit.testing.v1 import AppTest

    from know_core.api import cost_ledger, load_experiment
    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    run_id = record_experiment(tiny_experiment(seeds=[0, 1]), RunStore(tmp_path), name="tiny")
    result = load_experiment(tmp_path, run_id)
    ledger = result.timings["per_seed"][0]["ledger"]
    assert {"forgetting", "predict:taskvector", "oracle:2", "oracle:4", "finetune"} <= set(ledger)
    assert ledger["oracle:2"]["cpu_s"] > 0 and ledger["oracle:2"]["gpu_s"] is None
    table = cost_ledger(result)
    assert table["has_cpu"] and {(r["method"], r["scale"]) for r in table["rows"]} == {
        (m, s) for m in ("taskvector", "expfit") for s in (2.0, 4.0)}
    assert all(r["oracle_exact"] and r["overhead_cpu_s"] > 0 and r["break_even"] for r in table["rows"])

    monkeypatch.setenv("KNOW_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.switch_page("screens/scaling.py")
    at.run()
    assert not at.exception, at.exception
    titles = [json_.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any(t.startswith("Cost against gain · tiny") for t in titles)
    assert any("standard preset (reference" in t for t in titles)  # the reference run, shown by default
    frame = at.dataframe[-1].value
    standard = frame[frame["run"].str.startswith("standard")]
    assert len(standard) == 18 and standard["break-even (tasks)"].str.startswith("no ").all()
    at.toggle(key="cost-reference").set_value(False).run()
    assert not any("standard preset" in json_.loads(c.proto.spec)["layout"]["title"]["text"]
                   for c in at.get("plotly_chart"))


@pytest.mark.parametrize("per_seed", [None, 5, [], [{"no seed": 1}], [{"seed": 0, "forgetting_s": "x"}]])
def test_cost_table_passes_over_missing_or_damaged_timings(per_seed):
    results = _results({}, ledger=False)
    results["timings"] = {"total_s": 1.0, "per_seed": per_seed}
    table = cost_table(results)
    assert table["rows"] and all(r["overhead_s"] is None and r["break_even"] is None for r in table["rows"])
