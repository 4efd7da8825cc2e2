"""The CLI opens with the run's headline: ``runs show RUN_ID`` (after the line naming the run) and ``report``."""

import pytest
from experiment_helpers import tiny_experiment

from know_core.api import load_experiment, run_headline, stored_headline
from know_core.cli import main


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    root = tmp_path_factory.mktemp("runs-cli-headline")
    return root, record_experiment(tiny_experiment(scales=[2.0]), RunStore(root), name="cli")


def test_runs_show_prints_the_headline_before_the_details(experiment, stored_run, capsys):
    for root, run_id in (experiment, stored_run):
        assert main(["runs", "show", run_id, "--runs-dir", str(root)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith(f"run {run_id}")
        assert lines[1] == "  " + stored_headline(root, run_id) and lines[1].startswith("  The film ")
    root, run_id = experiment
    assert stored_headline(root, run_id) == run_headline(load_experiment(root, run_id))


def test_report_prints_the_headline_first(experiment, capsys):
    root, run_id = experiment
    for extra in ([], ["--markdown"]):
        assert main(["report", str(root / run_id / "results.json"), *extra]) == 0
        out = capsys.readouterr().out
        assert out.startswith(run_headline(load_experiment(root, run_id)) + "\n\n")


def test_a_failed_or_missing_run_gets_a_sentence_not_an_exception(tmp_path):
    from know_core.store.runstore import RunStore

    store = RunStore(tmp_path)
    run_id = store.create_in_place("experiment", {"preset": "tiny"}, name="doomed").name
    store.mark(run_id, "failed", "out of memory")
    assert stored_headline(tmp_path, run_id) == "This run failed: out of memory"
    assert stored_headline(tmp_path, "nope").startswith("This run cannot be read: ")


def test_report_shows_no_spread_for_one_seed_and_one_verdict_per_kind(experiment, capsys):
    """A one-seed run: no ``± 0.000`` (a std of one value), and the "one seed, no interval" verdicts — one per method
    and scale before — merged into one line, in the text and the Markdown summary alike."""
    root, run_id = experiment
    results = load_experiment(root, run_id)
    assert len(results.config.seeds) == 1
    for extra in ([], ["--markdown"]):
        assert main(["report", str(root / run_id / "results.json"), *extra]) == 0
        out = capsys.readouterr().out
        assert "±" not in out
        one_seed = [
            line for line in out.splitlines()[1:] if "one seed" in line.lower() and "no interval" in line.lower()
        ]
        assert len(one_seed) == 1, one_seed
