import json

import pytest

from know_core.cli import main
from know_core.common.errors import KnowError
from know_core.experiment.transfer import format_transfer, load_transfer, transfer_rows
from know_core.metatrain.plan import list_jobs


def _figures(tmp_path, backtest=0.9):
    cell = {"backtest": backtest, "warm": 1.2, "warm_cos": -0.1}
    none = {"backtest": None, "warm": None, "warm_cos": None}
    block = {"n_runs": 4, "n_forgot": 1, "n_warm": 4,
             "all": {m: {"conv": none, "fc": cell, "bias": cell} for m in ("naive", "known_vit")},
             "forgot": {m: {"conv": none, "fc": cell, "bias": none} for m in ("naive", "known_vit")}}
    path = tmp_path / "transfer.json"
    path.write_text(json.dumps({"measured": "now", "methods": ["naive", "known_vit"], "table": {"vit_tiny": block},
                                "setup": ["a line"], "notes": ["a note"]}))
    return path


def test_rows_skip_groups_the_architecture_lacks(tmp_path):
    data = load_transfer(_figures(tmp_path))
    rows = transfer_rows(data)
    assert {r["group"] for r in rows} == {"fc", "bias"} and len(rows) == 4
    assert rows[0] == {"model": "vit_tiny", "films": 4, "method": "keep Θ", "group": "fc", "backtest": 0.9,
                       "warm": 1.2}
    assert {r["group"] for r in transfer_rows(data, "forgot")} == {"fc"}
    text = format_transfer(data)
    assert "vit_tiny: 4 held-out films" in text and "0.900 | 1.200" in text and "a note" in text
    assert "| KNOWN (CNN + ViT films) | 0.900 | 1.200 |" in format_transfer(data, markdown=True)


def test_report_transfer_prints_or_exits_2(tmp_path, capsys):
    path = _figures(tmp_path, backtest=0.75)
    assert main(["report", "--transfer", str(path)]) == 0
    assert "0.750 | 1.200" in capsys.readouterr().out
    assert main(["report", "--transfer", str(tmp_path / "none.json")]) == 2
    assert "bench_transfer.py" in capsys.readouterr().err
    path.write_text(json.dumps({"table": {"vit_tiny": {"all": {"naive": {"fc": {"backtest": "x"}}}}}}))
    with pytest.raises(KnowError, match="not a readable transfer report"):
        load_transfer(path)


def test_transfer_grids_are_held_out_and_record_warm_oracles():
    transfer, vit = list_jobs("transfer"), list_jobs("vit")
    assert {j.config["model"] for j in transfer} == {"vit_tiny", "mlp"}
    assert all(j.config["warm"] == "auto" and 7000 <= j.config["seed"] < 8000 for j in transfer)
    assert {j.config["protocol"] for j in transfer} == {"release", "equal-steps"}
    assert {j.config["model"] for j in vit} == {"vit_tiny"} and len(vit) == 8
    assert not {j.config["seed"] for j in transfer} & {j.config["seed"] for j in list_jobs("default")}
