"""NiNo's two predictors (nino_mlp: WNN+, nino: the GNN) wherever KNOWN is: an experiment that asks for them records
their rows, and the Experiments form, Compare, Scaling, the Sweeps page, the KNOWN page's inspector and flat-window
response, the cost ledger and the transfer report show them (issue 20, point 4). One tiny run (an MLP, S = 5: NiNo
reads five stages) is recorded once for the module."""

import dataclasses

import pytest
from experiment_helpers import tiny_experiment
from page_helpers import chart, page
from page_helpers import texts as page_texts
from test_hostile_pages import run_page, texts

from know_core.api import cost_ledger, load_experiment, predictor_entry

NINO = ("nino_mlp", "nino")


def method_label(method: str) -> str:
    return predictor_entry(method).title
METHODS = ["naive", "known", *NINO]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(runs dir, id of a one-seed experiment with naive, known, nino_mlp and nino at ×2)."""
    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    root = tmp_path_factory.mktemp("runs-nino")
    cfg = tiny_experiment(methods=METHODS, scales=[2.0])
    cfg = dataclasses.replace(cfg, source=dataclasses.replace(cfg.source, stages=5, d0_fraction=0.5))
    return root, record_experiment(cfg, RunStore(root), name="with NiNo")


def test_the_experiment_records_rows_for_both_nino_predictors(runs):
    root, run = runs
    rows = load_experiment(root, run).rows
    for method in NINO:
        mine = [r for r in rows if r["method"] == method and r["scale"] == 2.0]
        assert mine and all(r.get("valid", True) for r in mine), mine  # not left out
        assert all(isinstance(r.get("target_acc"), float) for r in mine)  # fine-tuned downstream
        assert [r for r in rows if r["method"] == f"shrink:{method}"]  # and its shrinkage control


@pytest.mark.parametrize("name", ["compare", "scaling"])
def test_compare_and_scaling_show_both(monkeypatch, runs, name):
    root, run = runs
    at = run_page(monkeypatch, root, name, runs=run)
    assert not at.exception, at.exception
    shown = " ".join(texts(at)) + " ".join(str(d.value.to_dict()) for d in at.dataframe)
    for method in NINO:
        assert method_label(method) in shown or method in shown, (name, method)


def test_the_experiments_form_offers_both(monkeypatch, tmp_path):
    at = run_page(monkeypatch, tmp_path, "experiments")
    assert not at.exception, at.exception
    (methods,) = [m for m in at.multiselect if m.label == "Methods"]
    assert set(NINO) <= set(methods.options)
    assert not set(NINO) & set(methods.value)  # opt-in: the presets keep their methods


def test_the_cost_ledger_names_who_trained_nino(runs):
    root, run = runs
    ledger = cost_ledger(load_experiment(root, run))
    by_method = {r["method"]: r for r in ledger["rows"]}
    for method in NINO:
        assert by_method[method]["meta_training"] == "released checkpoint, trained by its authors"
        assert "meta-training" not in by_method[method]["parts"]  # not a 0 s part: a cost we did not pay or know
    (note,) = [n for n in ledger["notes"] if "trained by its authors" in n]
    assert note.startswith(("nino, nino_mlp:", "nino_mlp, nino:")), note


def test_the_cost_section_shows_it(monkeypatch, runs):
    root, run = runs
    at = run_page(monkeypatch, root, "scaling", runs=run)
    (ledger,) = [d.value for d in at.dataframe if "meta-training" in d.value.columns]
    column = dict(zip(ledger["method"], ledger["meta-training"]))  # methods by their labels
    released = "released checkpoint, trained by its authors"
    assert column[method_label("nino")] == column[method_label("nino_mlp")] == released


def test_the_known_page_shows_nino_beside_known(monkeypatch, tmp_path):
    at = page(monkeypatch, tmp_path, "known")
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "known (default): next" in d.value.columns)
    assert f"{method_label('nino_mlp')}: next" in table.columns  # WNN+ answers one window (a one-weight tensor)
    assert f"{method_label('nino')}: next" not in table.columns  # the GNN needs a network: said so, not crashed
    assert any("NiNo" in t and "GNN" in t and "whole network" in t for t in page_texts(at))  # (escaped Markdown)
    names = [t["name"] for t in chart(at, "flat window")["data"]]
    for method in NINO:
        assert any(n.startswith(f"{method_label(method)} · ") for n in names), names  # labelled, not raw names
    assert any(n.startswith("known (default) · ") for n in names)
    transfer = next(d.value for d in at.dataframe if "backtest" in d.value.columns)
    assert {method_label(m) for m in NINO} <= set(transfer["method"])  # the transfer table under it


def test_the_sweeps_page_offers_both(monkeypatch, tmp_path):
    from sweep_helpers import run_tiny

    from know_core.executors import make_executor
    from know_core.sweep import SweepSpec

    base = tiny_experiment(methods=["naive", *NINO], scales=[2.0], oracles="off")
    base = dataclasses.replace(base, source=dataclasses.replace(base.source, d0_fraction=0.5))
    run_tiny(tmp_path, make_executor("inline"), SweepSpec(base, [("source.stages", [5])], [0]))
    monkeypatch.setenv("KNOW_RUNS_DIR", str(tmp_path))
    at = run_page(monkeypatch, tmp_path, "sweeps")
    assert not at.exception, at.exception
    (method,) = [s for s in at.selectbox if s.label.startswith("method")]
    assert {method_label(m) for m in NINO} <= set(method.options), method.options  # shown by label
    method.set_value("nino").run()  # the value stays the key (URL, session state)
    assert not at.exception and at.query_params["f_method"] == "nino", at.query_params



@pytest.mark.parametrize("model", ["simple_cnn", "mlp"])
def test_nino_reads_a_film_read_back_from_disk_in_the_models_order(model):
    """A state read back from safetensors is sorted by name (0, 12, 14, 3 …; bias before weight), and NiNo's graph
    hangs each bias on the neurons its weight made: the prediction must not depend on the state's key order."""
    import torch

    from know_core.engine.extrapolate import extrapolate
    from know_core.models import create_model, param_groups
    from know_core.predictors import get_predictor

    torch.manual_seed(0)
    net = create_model(model, (1, 8, 8), 10)
    groups = param_groups(net)
    film = [{k: v.detach().clone() for k, v in net.state_dict().items()}]
    for _ in range(4):
        film.append({k: v + 0.01 * torch.randn_like(v) for k, v in film[-1].items()})
    on_disk = [dict(sorted(state.items())) for state in film]
    assert list(on_disk[0]) != list(film[0])  # the orders do differ
    nino = get_predictor("nino")
    (own,), (read,) = extrapolate(film, groups, nino, 1), extrapolate(on_disk, groups, nino, 1)
    for name in own:
        torch.testing.assert_close(read[name], own[name], rtol=0, atol=0)


def test_the_transfer_report_names_both():
    from know_core.api import format_transfer, load_transfer, transfer_rows

    data = load_transfer()
    shown = {r["method"] for r in transfer_rows(data)}
    report = format_transfer(data)
    for method in NINO:
        assert method_label(method) in shown and method_label(method) in report
