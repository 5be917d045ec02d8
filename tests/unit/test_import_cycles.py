"""The import graph of the loop's code: no module imports itself through others, and the
packages (storage, curation, retrain, evaluation) never import flows or prefect.

Why every import counts, also those inside functions and under `if TYPE_CHECKING:`: a lazy
import only hides a circle (it fails at the first call instead of at import), and a
type-only one still ties two modules together. Read with `ast`, nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("flows", "storage", "curation", "retrain", "evaluation")
PACKAGES = ("storage", "curation", "retrain", "evaluation")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for root in ROOTS for p in sorted((REPO / root).rglob("*.py"))}


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """Every name `path` imports anywhere in the file (absolute, as written; relative resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            for alias in node.names:  # `from storage import home` imports storage.home
                if f"{base}.{alias.name}" in known:
                    out.add(f"{base}.{alias.name}")
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for target in imported(path, known):
            while target and target not in known:  # `import a.b.c` names the module a.b.c
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_graph_is_read():
    edges = graph()
    assert "storage.registry" in edges and "flows.config" in edges
    assert "storage.home" in edges["storage.registry"]
    assert "evaluation.gate" in edges["flows.config"]  # the [gate] section is GateRules


def test_no_import_cycles():
    edges = graph()
    found = cycles(edges)
    circles = [
        "; ".join(f"{v} -> {', '.join(sorted(edges[v] & set(c)))}" for v in c) for c in found
    ]
    assert not found, "import circles (break each one, e.g. move the shared part):\n" + "\n".join(
        circles
    )


def test_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_never_import_flows_or_prefect(package):
    known = modules()
    bad = {
        name: sorted(t for t in imported(path, known) if t.split(".")[0] in {"flows", "prefect"})
        for name, path in known.items()
        if name.split(".")[0] == package
    }
    assert {name: targets for name, targets in bad.items() if targets} == {}
