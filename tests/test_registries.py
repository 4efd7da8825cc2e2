"""One registry mechanism: an executor, a command or a predictor's special case is an entry, so adding one is one
registration (one file) and the callers list or ask it without knowing its name."""

import pytest

from know_core.common.errors import ConfigError
from know_core.common.registry import Entry


def test_a_registered_executor_is_made_by_name_and_offered_by_the_cli(monkeypatch):
    import argparse

    from know_core.cli import executor_args
    from know_core.executors import EXECUTORS, InlineExecutor, make_executor

    made = []
    monkeypatch.setitem(EXECUTORS._entries, "solo", Entry("solo", lambda w, a: made.append(w) or InlineExecutor(),
                                                          help="one unit at a time, for this test"))
    assert isinstance(make_executor("solo", 3), InlineExecutor) and made == [3]
    with pytest.raises(ConfigError, match="needs --executor ray"):
        make_executor("solo", ray_address="auto")
    parser = argparse.ArgumentParser()
    executor_args(parser)
    assert parser.parse_args(["--executor", "solo"]).executor == "solo"
    assert "solo: one unit at a time" in parser.format_help().replace("\n", " ").replace("  ", " ")


def test_a_registered_command_is_parsed_and_its_traits_read(monkeypatch):
    from know_core.cli import COMMANDS, build_parser

    build_parser()  # discovers the package's own commands first
    assert COMMANDS.get("demo").trait("threaded") and not COMMANDS.get("runs").trait("threaded")

    def add(p):
        p.add_argument("--n", type=int, required=True)
        p.set_defaults(func=lambda args: args.n)

    monkeypatch.setitem(COMMANDS._entries, "echo", Entry("echo", add, help="print n"))
    args = build_parser().parse_args(["echo", "--n", "4"])
    assert args.command == "echo" and args.func(args) == 4


def test_knowns_special_cases_are_read_from_its_entry(monkeypatch, tmp_path):
    from know_core.experiment import methods
    from know_core.predictors import known_checkpoint, predictor_trait

    assert methods.official_predictor() == "known"
    assert predictor_trait("known", "meta_trained") and not predictor_trait("expfit", "meta_trained")
    assert predictor_trait("known+dc", "meta_trained") is None  # a variant is no predictor's exact name
    monkeypatch.setattr(known_checkpoint, "DEFAULT_CHECKPOINT", tmp_path / "absent.safetensors")
    assert methods.missing_checkpoints(["naive", "known", "expfit"]) == ["known"]
    assert methods.missing_checkpoints(["naive", "expfit"]) == []


def test_old_job_configs_read_through_legacy():
    from know_core.metatrain.trajfile import budget_of
    from know_core.store.legacy import job_budget, job_protocol

    assert budget_of({"epochs": 3}) == job_budget({"epochs": 3}) == "epochs:3"
    assert budget_of({}) == "epochs:1" and budget_of({"stage_budget": "steps:6", "epochs": 3}) == "steps:6"
    assert job_protocol({}) == "release" and job_protocol({"protocol": "equal-steps"}) == "equal-steps"
