"""The dashboard reaches the engine through one door: every module in screens/ (and app.py) imports from know_core
only ``know_core.api`` (or ``from know_core import api``). A new deep import fails here, naming the file and import."""

import ast

import pytest
from conftest import REPO

FACADE = "know_core.api"
UI_FILES = sorted(REPO.glob("screens/*.py")) + [REPO / "app.py"]


def engine_imports(path) -> list[tuple[int, str]]:
    """(line, import) for every know_core import in ``path`` that does not go through the façade."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            bad += [(node.lineno, f"import {a.name}") for a in node.names
                    if a.name.split(".")[0] == "know_core" and a.name != FACADE]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "know_core":
            if node.module == FACADE:
                continue
            names = [a.name for a in node.names]
            if node.module != "know_core" or names != ["api"]:
                bad.append((node.lineno, f"from {node.module} import {', '.join(names)}"))
    return bad


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_the_ui_imports_only_the_facade(path):
    bad = engine_imports(path)
    assert not bad, f"{path.relative_to(REPO)} reaches past the façade ({FACADE}): " + "; ".join(
        f"line {line}: {text}" for line, text in bad)


def test_the_check_catches_a_deep_import(tmp_path):
    page = tmp_path / "page.py"
    page.write_text("import know_core.jobs\nfrom know_core import api\nfrom know_core.api import KnowError\n"
                    "def f():\n    from know_core.experiment.panels import protocol_line\n")
    assert engine_imports(page) == [
        (1, "import know_core.jobs"),
        (5, "from know_core.experiment.panels import protocol_line"),
    ]
