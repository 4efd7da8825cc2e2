"""know_core.experiment.panels: the records behind the forgetting panel, the retrodiction table and r-based axes."""

from know_core.experiment.panels import (
    film_panel,
    protocol_line,
    retrodiction_summary,
    scale_ticks,
    stage_tick_labels,
)


def test_ticks_follow_r():
    assert scale_ticks(0.5, 3, 4.0) == ([0.25, 0.5, 1.0, 2.0, 4.0], ["×1/4", "×1/2", "×1", "×2", "×4"])
    vals, labels = scale_ticks(1 / 3, 2, 9.0)
    assert labels == ["×1/3", "×1", "×3", "×9"] and abs(vals[-1] - 9.0) < 1e-9


def test_protocol_line_reads_old_and_new_configs():
    assert protocol_line({"source": {"epochs": 1}}).startswith("protocol custom: stage budget epochs:1")
    new = {"source": {"protocol": "release", "stage_budget": "epochs:1", "optim": {"optimizer": "adamw",
                                                                                  "weight_decay": 0.01}}}
    assert protocol_line(new).startswith("protocol release: stage budget epochs:1, adamw wd 0.01")
    assert protocol_line({"source": {"no_such_key": 1}}).startswith("protocol unknown")


def test_film_panel_of_an_old_entry_has_no_report_and_no_continuation():
    entry = {"seed": 0, "forgot": False, "verdict": "NO forgetting", "source_acc": [0.9, 0.91, 0.92],
             "stage_sizes": [100, 50, 25]}
    panel = film_panel(entry, 0.5)
    assert panel["report"] is None and panel["warm"] == [] and panel["control"] == []
    assert [p["source_acc"] for p in panel["stages"]] == [0.9, 0.91, 0.92] and panel["verdict"] == "NO forgetting"
    assert stage_tick_labels(panel) == ([0, 1, 2], ["0<br>×1", "1<br>×1/2", "2<br>×1/4"])


def test_film_panel_puts_warm_oracles_left_of_theta0_and_the_control_over_the_stages():
    entry = {
        "source_acc": [0.9, 0.8],
        "stage_sizes": [90, 30],
        "warm": {"sizes": [270, 810], "source_acc": [0.92, 0.93], "source_loss": [0.3, 0.2]},
        "control": {"sizes": [90], "source_acc": [0.91], "source_loss": [0.35]},
    }
    panel = film_panel(entry, 1 / 3)
    assert [(p["stage"], round(p["scale"], 6)) for p in panel["warm"]] == [(-1, 3.0), (-2, 9.0)]
    assert [(p["stage"], p["scale"]) for p in panel["control"]] == [(1, 1.0)]
    assert stage_tick_labels(panel)[1][0] == "-2<br>×9"


def test_retrodiction_summary_averages_seeds_per_method_scale_and_group():
    rows = [
        {
            "seed": s,
            "method": m,
            "scale": 2.0,
            "group": "fc",
            "layer": layer,
            "rel_error": e,
            "cosine": 0.1 * s,
            "rel_error_data": None,
            "cosine_data": None,
        }
        for s, e in ((0, 1.0), (1, 2.0))
        for m in ("expfit", "control")
        for layer in ("", "0.weight")
    ]
    out = retrodiction_summary(rows)
    assert [r["method"] for r in out] == ["expfit", "control"]
    assert out[0]["rel_error"] == 1.5 and out[0]["seeds"] == 2 and out[0]["rel_error_data"] is None
    assert len(retrodiction_summary(rows, level="layer")) == 2 and all(
        r["layer"] == "0.weight" for r in retrodiction_summary(rows, level="layer")
    )
