"""The project as a package: the ``know`` command, its package data, and nothing that reaches outside the repository
(no design notes cited from elsewhere, no sibling folders looked up, no import-path edits)."""

from __future__ import annotations

import importlib
import re
import sys
import tomllib

import pytest
from conftest import REPO

from know_core.cli import build_parser
from know_core.predictors.keras_import import OFFICIAL_ENV, official_known_folder
from know_core.predictors.known import DEFAULT_CHECKPOINT

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SHIPPED = ["app.py", "screens", "know_core", "benchmarks", "docs", "scripts", "README.md", "pyproject.toml"]


def source_files(*roots: str):
    for root in roots:
        path = REPO / root
        for file in [path] if path.is_file() else sorted(path.rglob("*")):
            if file.suffix in (".py", ".md", ".sh", ".toml") and "__pycache__" not in file.parts:
                yield file


def test_console_script_is_the_cli(monkeypatch):
    module, _, name = PYPROJECT["project"]["scripts"]["know"].partition(":")
    assert getattr(importlib.import_module(module), name) is importlib.import_module("know_core.cli").main
    monkeypatch.setattr(sys, "argv", ["/venv/bin/know"])
    assert build_parser().prog == "know"
    monkeypatch.setattr(sys, "argv", ["/repo/know_core/__main__.py"])
    assert build_parser().prog == "python -m know_core"


def test_package_ships_the_default_checkpoint():
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == ["know_core*"]
    patterns = setuptools["package-data"]["know_core"]
    shipped = {p for pattern in patterns for p in (REPO / "know_core").glob(pattern)}
    assert DEFAULT_CHECKPOINT in shipped and DEFAULT_CHECKPOINT.with_suffix(".json") in shipped


def test_official_known_folder_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(OFFICIAL_ENV, raising=False)
    assert official_known_folder() is None
    assert build_parser().parse_args(["demo", "--out", "x"]).official_known is None
    monkeypatch.setenv(OFFICIAL_ENV, "  ")
    assert official_known_folder() is None
    monkeypatch.setenv(OFFICIAL_ENV, str(tmp_path))
    assert official_known_folder() == str(tmp_path)
    assert build_parser().parse_args(["demo", "--out", "x"]).official_known == str(tmp_path)
    assert build_parser().parse_args(["demo", "--out", "x", "--official-known", "y"]).official_known == "y"


@pytest.mark.parametrize("pattern", [r"DESIGN\.md", r"\.\./shared\b", r"""["']shared["']"""])
def test_nothing_shipped_points_outside_the_repository(pattern):
    hits = [f"{f.relative_to(REPO)}:{n}" for f in source_files(*SHIPPED)
            for n, line in enumerate(f.read_text().splitlines(), 1) if re.search(pattern, line)]
    assert not hits


def test_no_import_path_edits():
    edit = re.compile(r"sys\.path\.(insert|append)|PYTHONPATH")
    hits = [str(f.relative_to(REPO)) for f in source_files("tests", "benchmarks", "know_core", "screens", "app.py")
            if f != REPO / "tests" / "test_package.py" and edit.search(f.read_text())
            and REPO / "tests" / "golden" not in f.parents]  # golden-vector makers: scratch env, others' code
    assert not hits
