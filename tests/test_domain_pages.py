"""Compare and Scaling with a domain-generalisation run: a held-out-domain selector (only then), and the figures of
the domain it picks."""

import json

import pytest
from experiment_helpers import tiny_experiment
from test_hostile_pages import run_page

from know_core.api import method_label


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(runs dir, rotated run id, plain run id)."""
    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    root = tmp_path_factory.mktemp("runs-dg")
    store = RunStore(root)
    small = dict(scales=[2.0], methods=["naive", "taskvector"], oracles="off")
    rotated = record_experiment(tiny_experiment(target_dataset="rotated:synthetic:2-3", **small), store, name="dg")
    plain = record_experiment(tiny_experiment(**small), store, name="plain")
    return root, rotated, plain


def naive_line(at) -> float:
    (spec,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart")
               if "Target accuracy" in json.loads(c.proto.spec)["layout"]["title"]["text"]]
    return next(t for t in spec["data"] if t["name"] == method_label("taskvector"))["y"][0]  # ×1: naive, this domain's


@pytest.mark.parametrize("name", ["compare", "scaling"])
def test_domain_selector_shows_one_held_out_domain_at_a_time(monkeypatch, runs, name):
    root, rotated, plain = runs
    at = run_page(monkeypatch, root, name, runs=rotated, domain="15")
    assert not at.exception, at.exception
    select = at.selectbox(key=f"{name}-domain")
    assert select.options == ["0°", "15°", "30°", "45°", "60°", "75°", "mean over the held-out domains"]
    assert select.value == 15
    if name == "compare":
        (table,) = [d.value for d in at.dataframe if "target acc" in d.value.columns]
        assert set(table["held-out domain"]) == {15}
        return
    first = naive_line(at)
    at = select.set_value(75).run()
    assert not at.exception and at.query_params["domain"] == "75"
    assert naive_line(at) != first  # another test domain, other images: another accuracy
    at = select.set_value("mean").run()
    assert not at.exception and at.query_params["domain"] == "mean"


@pytest.mark.parametrize("name", ["compare", "scaling"])
def test_no_domain_selector_for_a_run_without_domains(monkeypatch, runs, name):
    root, _, plain = runs
    at = run_page(monkeypatch, root, name, runs=plain)
    assert not at.exception, at.exception
    assert not [s for s in at.selectbox if s.key == f"{name}-domain"]


def test_a_bad_domain_in_the_url_falls_back_to_the_mean(monkeypatch, runs):
    root, rotated, _ = runs
    for bad in ("nope", "90", ""):
        at = run_page(monkeypatch, root, "scaling", runs=rotated, domain=bad)
        assert not at.exception, at.exception
        assert at.selectbox(key="scaling-domain").value == "mean"
