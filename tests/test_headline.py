"""One plain sentence per run and page (know_core.api.headline): on real tiny runs, and on hand-built results for
the parts a run may lack (no oracles, one seed, a forgetting-only run, a failed run)."""

from types import SimpleNamespace as NS

import pytest
from experiment_helpers import tiny_experiment

from know_core.api import (
    backtest_headline,
    collapse_verdicts,
    downstream_headline,
    film_headline,
    load_experiment,
    load_forget_run,
    retrodiction_headline,
    run_headline,
    status_headline,
)
from know_core.api.fmt import pvalue


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    root = tmp_path_factory.mktemp("runs-headline")
    run_id = record_experiment(tiny_experiment(seeds=[0, 1]), RunStore(root), name="two seeds")
    return load_experiment(root, run_id)


def film(forgot: bool, p: float, pattern: str | None = None):
    return NS(forgot=forgot, report=NS(p_value=p, pattern=pattern or ("forgets" if forgot else "no forgetting")))


def result(**parts):
    base = dict(trajectories=[film(True, 1e-86)], rows=[], summary=[], retrodiction=[], backtest=[], verdicts=[])
    return NS(**{**base, **parts})


def test_a_real_experiment_reads_in_one_paragraph_in_order(experiment):
    text = run_headline(experiment)
    film_part, retro_part, down_part = (film_headline(experiment), retrodiction_headline(experiment),
                                        downstream_headline(experiment))
    assert text == " ".join([film_part, retro_part, down_part])
    ps = [t.report.p_value for t in experiment.trajectories]
    assert "2 seeds" in film_part and any(pvalue(p)[4:] in film_part for p in ps)
    assert "×4 network" in retro_part  # the largest scale of the run
    assert "beat naive" in down_part and "95 %" in down_part  # two seeds: an interval, not "one seed"
    assert "None" not in text and "nan" not in text


def test_a_forgetting_only_run_gets_its_film_sentence(stored_run):
    root, run_id = stored_run
    run = load_forget_run(root, run_id)
    text = run_headline(run)
    assert text == film_headline(run)
    assert text.startswith("The film ") and pvalue(run.trajectory.report.p_value) in text


def test_runs_without_results_or_unfinished_get_a_sentence():
    assert "no results" in run_headline(None)
    assert status_headline("failed", "out of memory") == "This run failed: out of memory"
    assert status_headline("cancelled") == "This run was cancelled."
    assert status_headline("done") is None
    assert film_headline(result(trajectories=[])) == "This run recorded no forgetting film."


def test_the_film_verdict_with_its_p_value():
    assert film_headline(result()) == "The film forgot (p = 1e-86)."
    learns = film_headline(result(trajectories=[film(False, 0.9, "learns")]))
    assert learns.startswith("The film did not forget (p = 0.9): it kept learning")
    mixed = film_headline(result(trajectories=[film(True, 1e-5), film(False, 0.3), film(True, 0.01)]))
    assert mixed == "The film forgot on 2 of 3 seeds (p from 1e-5 to 0.3)."
    both = film_headline(result(trajectories=[film(True, 1e-5), film(True, 0.01)]))
    assert both.endswith("all 2 seeds (p ≤ 0.01).")
    old = film_headline(result(trajectories=[NS(forgot=True, report=None)]))  # recorded before the report existed
    assert old == "The film forgot."


def retro(method, scale, group, rel):
    return {"method": method, "scale": scale, "group": group, "layer": "", "seed": 0, "rel_error": rel,
            "cosine": 0.1, "rel_error_data": None, "cosine_data": None}


def test_nearest_to_the_warm_oracle_at_the_largest_scale():
    rows = [retro("taskvector", 2.0, "fc", 0.5), retro("taskvector", 8.0, "fc", 1.3),
            retro("taskvector", 8.0, "bias", 1.2), retro("known", 8.0, "fc", 1.25),
            retro("known", 8.0, "bias", 1.19), retro("control", 8.0, "fc", 0.9)]
    text = retrodiction_headline(result(retrodiction=rows))
    assert text.startswith("No predictor got closer to the real ×8 network")
    assert "KNOWN was nearest (1.22;" in text  # mean of 1.25 and 1.19; ×2's 0.5 is not the largest scale
    assert "training Θ0 longer on D0 alone reached 0.9." in text
    rows[3]["rel_error"] = 0.7
    text = retrodiction_headline(result(retrodiction=rows))
    assert text.startswith("KNOWN got closer to the real ×8 network") and "KNOWN was nearest (0.945" in text


def test_no_oracles_falls_back_then_says_so():
    cold = [{"method": "expfit", "scale": 4.0, "seed": 0, "dist_to_oracle": 0.8, "valid": True},
            {"method": "shrink:expfit", "scale": 4.0, "seed": 0, "dist_to_oracle": 0.1, "valid": True}]
    text = retrodiction_headline(result(rows=cold))
    assert text.startswith("ExpFit got closer to the real ×4 network (trained on that data)") and "(0.8;" in text
    bare = result(rows=[{"method": "expfit", "scale": 4.0, "seed": 0, "valid": True, "target_acc": 0.8}])
    assert "no larger-data network" in retrodiction_headline(bare)
    assert run_headline(bare) == "The film forgot (p = 1e-86)."  # only the parts the run measured


def entry(method, scale, diff=None, ci=None, n=2, mean=0.8):
    e = {"method": method, "scale": scale, "mean": mean, "std": 0.01, "n": n}
    if diff is not None:
        e["vs_naive"] = {"mean": diff, "ci95": ci, "n": n}
    return e


def test_downstream_against_naive_with_the_real_networks_gain():
    summary = [entry("naive", 1.0, mean=0.8), entry("scratch", 1.0, -0.1, (-0.2, -0.05), mean=0.7),
               entry("taskvector", 2.0, 0.0071, (0.005, 0.0092)), entry("expfit", 2.0, -0.002, (-0.01, 0.004)),
               entry("oracle", 2.0, 0.02, (0.01, 0.03)), entry("oracle", 8.0, 0.04, (0.03, 0.05))]
    text = downstream_headline(result(summary=summary))
    assert text == ("TaskVector ×2 beat naive fine-tuning on the target (+0.0071, 95 % CI [+0.005, +0.0092]); "
                    "the real ×8 network gained +0.04.")
    summary[2]["vs_naive"]["ci95"] = (-0.001, 0.01)
    assert downstream_headline(result(summary=summary)).startswith(
        "No initialisation beat naive fine-tuning on the target (95 % intervals over 2 seeds); best TaskVector ×2")
    one = [entry("naive", 1.0, n=1, mean=0.7), entry("scratch", 1.0, 0.0, None, 1, 0.7),
           entry("expfit", 2.0, 0.013, None, 1)]
    text = downstream_headline(result(summary=one))
    assert text.startswith("With one seed no initialisation can be shown to beat naive") and "None" not in text
    assert text.endswith("so this target cannot show KNOW.")
    assert downstream_headline(result(summary=[entry("naive", 1.0)])).startswith("No initialisation other than")


def test_a_win_over_naive_is_weighed_against_the_shrinkage_control_and_chance():
    """Beating naive is worth less when Θ0 rescaled to the prediction's size does as well, and when many comparisons
    at 95 % each are made: the headline says both."""
    summary = [entry("naive", 1.0, mean=0.8)] + [entry(m, s, 0.001, (-0.002, 0.004)) for m in ("taskvector", "known")
                                                 for s in (2.0, 4.0, 8.0)]
    summary[1]["vs_naive"]["ci95"] = (0.0005, 0.003)
    summary[1]["vs_shrink"] = {"mean": 0.0004, "ci95": (-0.001, 0.002), "n": 2}
    text = downstream_headline(result(summary=summary))
    assert text == ("TaskVector ×2 beat naive fine-tuning on the target (+0.001, 95 % CI [+0.0005, +0.003]) — but it "
                    "did not beat its own shrinkage control (1 of 6 comparisons, each at 95 %; about 0.3 would cross "
                    "zero by chance).")
    summary[4]["vs_naive"]["ci95"] = (0.0001, 0.002)
    assert "— but neither beat its own shrinkage control (2 of 6" in downstream_headline(result(summary=summary))
    summary[4]["vs_shrink"] = {"mean": 0.001, "ci95": (0.0002, 0.002), "n": 2}
    assert "— KNOWN ×2 also beat its shrinkage control (2 of 6" in downstream_headline(result(summary=summary))


def test_backtest_names_the_best_and_what_could_not_run():
    rows = [{"method": "naive", "group": "fc", "layer": "", "rel_error": 1.0},
            {"method": "taskvector", "group": "fc", "layer": "", "rel_error": 0.6},
            {"method": "taskvector", "group": "fc", "layer": "0.weight", "rel_error": 0.1},
            {"method": "known", "note": "KNOWN needs a checkpoint"}]
    text = backtest_headline(result(backtest=rows))
    assert text == ("Hiding Θ0 and predicting it back, TaskVector beat keeping Θ1; TaskVector was nearest (0.6; "
                    "1 = keeping Θ1). KNOWN could not be backtested (the chart says why).")
    assert backtest_headline(result()) == "This run has no backtest (hide Θ0, predict it back)."


def test_fifteen_identical_verdicts_collapse_into_one():
    lines = ["Pre-training does not beat training from scratch on the target (naive 0.8200 vs scratch 0.8200)."]
    lines += [f"{m} ×{k:g} vs naive (+0.0100; one seed: no interval, no evidence either way)."
              for m in ("taskvector", "expfit", "known", "oracle-warm", "known-official") for k in (2, 4, 8)]
    lines += ["expfit ×2 beats naive (+0.0100, 95% CI [+0.0010, +0.0200]).",
              "taskvector ×2 beats naive (+0.0200, 95% CI [+0.0010, +0.0300]).",
              "Held-out domain 15°: expfit ×2 vs naive (+0.0100; one seed: no interval, no evidence either way).",
              "Against the warm oracle, expfit is closer than keeping Θ0 in 0 of 4 (scale, group) cells; best 1.232 "
              "(bias ×2).",
              "Against the warm oracle, taskvector is closer than keeping Θ0 in 0 of 4 (scale, group) cells; best "
              "1.057 (bias ×4)."]
    out = collapse_verdicts(lines)
    assert len(out) == 5 and out[0] == lines[0]
    assert out[1].startswith("One seed, so no interval") and out[1].count("known-official") == 1
    assert "taskvector ×2 (+0.01), ×4 (+0.01), ×8 (+0.01)" in out[1]
    assert out[2] == "expfit ×2 (+0.01); taskvector ×2 (+0.02) beat naive (95 % CI)."
    assert out[3].startswith("Held-out domain 15°: One seed")
    assert out[4] == ("Against the warm oracle, none of expfit (best 1.23) and taskvector (best 1.06) is closer than "
                      "keeping Θ0 in any (scale, group) cell.")
    assert collapse_verdicts(["something else"]) == ["something else"]
