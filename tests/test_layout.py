"""The package layout is the data flow: no import cycles, and no layer imports a higher one.

Every ``import`` counts — at module level, inside functions and under ``TYPE_CHECKING`` —
because each is a dependency a reader has to follow. Layers, lowest first; a module may
import its own subpackage's modules and anything in a lower layer.
"""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

import hitl_langgraph

PKG = "hitl_langgraph"
ROOT = Path(hitl_langgraph.__file__).parent

LAYERS: list[set[str]] = [
    {"errors", "clock", "_lazy", "_display_hooks", "_moved"},  # foundation
    {"policy"},
    {"store"},
    {"gates"},
    {"audit", "notify"},
    {"inbox"},
    {"notebook"},
    {"tracing"},
    {"review"},
    {"feedback"},
    {"server", "sim"},
    {"cli", "demo", "testing", ""},  # "" is the package root (hitl_langgraph/__init__.py)
]
RANK = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The package modules that ``name`` imports (a ``from m import x`` of a submodule
    ``x`` counts as importing ``m.x``, not ``m``)."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(PKG))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith(PKG):
                continue
            subs = {f"{target}.{a.name}" for a in node.names} & MODULES.keys()
            found.update(subs or {target})
            if subs != {f"{target}.{a.name}" for a in node.names}:
                found.add(target)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_room_has_a_layer() -> None:
    rooms = {_room(m) for m in MODULES}
    assert rooms <= RANK.keys(), f"add these to LAYERS in the right place: {rooms - RANK.keys()}"


def test_no_import_reaches_a_higher_layer() -> None:
    upward = sorted(
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        for t in targets
        if _room(t) != _room(m) and RANK[_room(t)] > RANK[_room(m)]
    )
    assert upward == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    # A package's __init__ re-exporting its own modules is not a cycle a reader follows:
    # leave out the edges from a package to its own submodules.
    graph = {
        m: {t for t in ts if not (MODULES[m].name == "__init__.py" and t.startswith(m + "."))}
        for m, ts in GRAPH.items()
    }
    assert _cycles(graph) == []


def test_the_checker_sees_a_cycle_and_an_upward_import() -> None:
    """The checks above can fail: a planted cycle and a planted upward edge are found."""
    planted = {k: set(v) for k, v in GRAPH.items()}
    planted["hitl_langgraph.policy.risk"].add("hitl_langgraph.store.records")
    planted["hitl_langgraph.store.records"].add("hitl_langgraph.policy.risk")
    assert ["hitl_langgraph.policy.risk", "hitl_langgraph.store.records"] in _cycles(planted)
    assert RANK[_room("hitl_langgraph.store.records")] > RANK[_room("hitl_langgraph.policy")]


def test_every_subpackage_says_what_it_does_and_may_import() -> None:
    for name, path in MODULES.items():
        if path.name == "__init__.py" and name != PKG:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert "may import" in doc, f"{name}'s docstring: say what it may import"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("hitl_langgraph.action", "hitl_langgraph.policy.action"),
        ("hitl_langgraph.engine", "hitl_langgraph.gates.engine"),
        ("hitl_langgraph.tool_node", "hitl_langgraph.gates.tool_node"),
        ("hitl_langgraph.gate", "hitl_langgraph.gates.gate"),
        ("hitl_langgraph.middleware", "hitl_langgraph.gates.middleware"),
        ("hitl_langgraph.decisions", "hitl_langgraph.gates.decisions"),
        ("hitl_langgraph.payload", "hitl_langgraph.gates.payload"),
        ("hitl_langgraph.events", "hitl_langgraph.gates.events"),
        ("hitl_langgraph.audit_export", "hitl_langgraph.audit.export"),
        ("hitl_langgraph.display", "hitl_langgraph.notebook.display"),
    ],
)
def test_old_module_paths_still_import_with_a_deprecation_warning(old: str, new: str) -> None:
    import sys

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert any(
        issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught
    )


def test_old_policy_and_notify_paths_are_the_new_packages() -> None:
    from hitl_langgraph.notify import WebhookNotifier
    from hitl_langgraph.policy import RiskPolicy, Rule, Thresholds

    assert RiskPolicy.__module__ == "hitl_langgraph.policy.risk"
    assert {Rule, Thresholds} and WebhookNotifier.__module__ == "hitl_langgraph.notify.notifiers"
