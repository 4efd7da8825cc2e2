"""The style CI enforces: ruff, as configured in pyproject.toml (lines <= 120, import order, no unused or undefined
names), finds nothing in the repository."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    exe = Path(sys.executable).with_name("ruff")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("ruff")
    if found is None:
        pytest.fail("ruff is not installed: scripts/setup.sh installs it from requirements-dev.txt")
    return [found]


def test_ruff_finds_nothing():
    proc = subprocess.run([*_ruff(), "check", "--no-cache", "--output-format", "concise", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_ruff_would_catch_a_long_line(tmp_path):
    """The check is not vacuous: a 121-character line under the same configuration is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("x = " + repr("a" * 115) + "\n")
    proc = subprocess.run([*_ruff(), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "E501" in proc.stdout, proc.stdout + proc.stderr
