"""The domain-generalisation target (rotated:DATASET, DomainBed's RotatedMNIST protocol): the rotations, the
disjoint domains, leave-one-domain-out bookkeeping through an experiment, and the refusals of bad input."""

import pytest
import torch
from experiment_helpers import tiny_experiment

from know_core.api import ExperimentResult
from know_core.cli import main
from know_core.common.errors import ConfigError
from know_core.data import load_dataset, nested_order
from know_core.data.rotated import ANGLES, domain_shares, domain_target, held_out_domains, rotate
from know_core.experiment.pipeline import run_experiment
from know_core.experiment.spec import preset
from know_core.experiment.stats import MEAN, summarise_rows


def test_four_quarter_turns_give_the_image_back_exactly():
    x = torch.randn(5, 1, 28, 28)
    y = x
    for _ in range(4):
        y = rotate(y, 90)
    assert torch.equal(y, x)
    assert not torch.equal(rotate(x, 90), x)
    assert torch.equal(rotate(x, 0), x)


def test_small_angles_turn_the_same_way_as_quarter_turns():
    """The bilinear path agrees with torch.rot90 near 90° (same direction, same centre)."""
    x = torch.randn(3, 1, 12, 12)
    assert torch.allclose(rotate(x, 89.999), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-3)
    assert (rotate(x, 45) - rotate(x, 30)).abs().max() > 0.1


def test_the_corners_are_filled_with_the_background():
    x = torch.full((1, 1, 10, 10), -0.5)
    out = rotate(x, 45, fill=-0.5)
    assert torch.allclose(out, x, atol=1e-6)  # a uniform background image stays itself, corners included


def test_domains_are_disjoint_shares_covering_every_image():
    shares = domain_shares(1003)
    assert len(shares) == len(ANGLES)
    joined = torch.cat(shares)
    assert len(joined) == 1003 and len(torch.unique(joined)) == 1003  # disjoint and complete
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert all(torch.equal(a, b) for a, b in zip(shares, domain_shares(1003)))  # a fixed seed


def test_leave_one_domain_out_target_holds_the_other_domains_only():
    base = load_dataset("synthetic:2-3")
    pooled_x = torch.cat([base.x_train, base.x_test])
    shares = domain_shares(len(pooled_x))
    task, strata = domain_target("rotated:synthetic:2-3", 0, None)
    # The test set is the 0° domain's share, unrotated; training holds the five other shares, nothing more.
    assert torch.equal(task.x_test, pooled_x[shares[0]])
    assert torch.equal(task.y_test, torch.cat([base.y_train, base.y_test])[shares[0]])  # labels stay with images
    assert len(task.y_train) == sum(len(s) for s in shares[1:]) and len(task.y_test) == len(shares[0])
    train_rows = {tuple(r.flatten().tolist()) for r in task.x_train}
    assert not any(tuple(r.flatten().tolist()) in train_rows for r in task.x_test)
    assert task.num_classes == 2 and len(torch.unique(strata)) == 2 * (len(ANGLES) - 1)
    # The draw of target images is balanced over class × training domain.
    counts = torch.bincount(strata[nested_order(strata, 3, balanced=True)[:40]])
    assert counts.max() - counts[counts > 0].min() <= 1 and (counts > 0).sum() == 10
    held75, _ = domain_target("rotated:synthetic:2-3", 75, None)
    assert torch.equal(held75.x_test, rotate(pooled_x[shares[-1]], 75, float(pooled_x.amin())))
    again, _ = domain_target("rotated:synthetic:2-3", 75, None)
    assert again.x_test is held75.x_test  # rotated once per (dataset, angle, device), then cached


def test_held_out_domains_and_their_refusals():
    assert held_out_domains("rotated:mnist-5k", "all") == list(ANGLES)
    assert held_out_domains("rotated:mnist-5k", "75") == [75]
    assert held_out_domains("fashion-mnist:5-9", "all") == [None]
    with pytest.raises(ConfigError, match="not one of the domains"):
        held_out_domains("rotated:mnist-5k", "90")
    with pytest.raises(ConfigError, match="not one of the domains"):
        held_out_domains("rotated:mnist-5k", "sideways")
    with pytest.raises(ConfigError, match="has no domains"):
        held_out_domains("fashion-mnist:5-9", "75")


def test_every_held_out_domain_gets_its_own_rows_summary_and_verdicts(tmp_path):
    cfg = tiny_experiment(target_dataset="rotated:synthetic:2-3", test_domain="all", scales=[2.0],
                          methods=["naive", "taskvector"], oracles="off")
    cfg.validate()
    results = run_experiment(cfg, tmp_path)
    rows = results["rows"]
    assert sorted({r["domain"] for r in rows}) == sorted(ANGLES)
    per_domain = {d: sorted((r["method"], r["scale"]) for r in rows if r["domain"] == d) for d in ANGLES}
    assert all(v == per_domain[0] for v in per_domain.values())  # the same row set for every held-out domain
    assert ("naive", 1.0) in per_domain[0] and ("taskvector", 2.0) in per_domain[0]
    # Different held-out domains test on different images, so the naive accuracies are not all one number.
    naive = {r["domain"]: r["target_acc"] for r in rows if r["method"] == "naive"}
    assert len(set(naive.values())) > 1
    summary = results["summary"]
    assert {e["domain"] for e in summary} == {*ANGLES, MEAN}
    assert summary == summarise_rows(rows)
    naive_45 = next(e for e in summary if e["domain"] == 45 and e["method"] == "naive")
    assert naive_45["mean"] == naive[45]
    naive_mean = next(e for e in summary if e["domain"] == MEAN and e["method"] == "naive")
    assert naive_mean["mean"] == pytest.approx(sum(naive.values()) / len(ANGLES))  # DomainBed's average
    tv = next(e for e in summary if e["domain"] == MEAN and e["method"] == "taskvector")
    tv_rows = [r["target_acc"] for r in rows if r["method"] == "taskvector"]
    assert tv["vs_naive"]["mean"] == pytest.approx((sum(tv_rows) - sum(naive.values())) / len(ANGLES))
    assert all(v.startswith(("Held-out domain", "Mean over")) for v in results["verdicts"] if "naive (" in v)
    res = ExperimentResult(config=cfg, rows=rows, summary=summary, verdicts=results["verdicts"], backtest=[],
                           retrodiction=[], trajectories=[], timings={})
    assert res.domains == [*ANGLES, MEAN]
    only = res.at_domain(30)
    assert {r["domain"] for r in only.rows} == {30} and {e["domain"] for e in only.summary} == {30}
    assert only.verdicts and all("domain 30°" in v or not v.startswith(("Held-out", "Mean")) for v in only.verdicts)
    averaged = res.at_domain(MEAN)
    assert {r["domain"] for r in averaged.rows} == {MEAN} and len(averaged.rows) == len(rows) // len(ANGLES)


def test_one_held_out_domain(tmp_path):
    cfg = tiny_experiment(target_dataset="rotated:synthetic:2-3", test_domain="60", scales=[2.0],
                          methods=["naive"], oracles="off")
    results = run_experiment(cfg, tmp_path)
    rows = results["rows"]
    assert {r["domain"] for r in rows} == {60} and {"naive", "scratch"} <= {r["method"] for r in rows}
    assert {e["domain"] for e in results["summary"]} == {60}  # one domain: no separate mean


def test_plain_targets_have_no_domain_rows(tmp_path):
    cfg = tiny_experiment(scales=[2.0], methods=["naive"], oracles="off")
    results = run_experiment(cfg, tmp_path)
    assert all("domain" not in r for r in results["rows"]) and all("domain" not in e for e in results["summary"])


def test_the_dg_preset_is_a_rotated_target():
    cfg = preset("dg")
    cfg.validate()
    assert cfg.target_dataset == "rotated:mnist-5k" and held_out_domains(cfg.target_dataset, cfg.test_domain) == \
        list(ANGLES)


@pytest.mark.parametrize("args, message", [
    (["--target", "rotated:nope"], "unknown dataset 'nope'"),
    (["--target", "nope:fashion-mnist"], "unknown dataset 'nope'"),
    (["--test-domain", "90"], "test_domain '90' is not one of the domains of rotated:mnist-5k"),
    (["--target", "fashion-mnist:5-9", "--test-domain", "75"], "has no domains"),
])
def test_bad_domain_input_exits_2_and_records_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["demo", "--preset", "dg", "--quiet", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()
