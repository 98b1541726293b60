"""The curated public API: every exported name resolves; the store imports stay light."""

from __future__ import annotations

import subprocess
import sys

import hitl_langgraph


def test_all_names_resolve_and_are_sorted() -> None:
    names = hitl_langgraph.__all__
    assert names == sorted(names, key=str.casefold)
    for name in names:
        assert getattr(hitl_langgraph, name) is not None, name
    assert "GatedToolNode" in dir(hitl_langgraph)


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        hitl_langgraph.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_store_and_cli_imports_do_not_pull_in_langgraph_runtime() -> None:
    code = (
        "import sys, hitl_langgraph.store, hitl_langgraph.errors;"
        "heavy = ('langgraph.pregel', 'langchain.', 'phoenix');"
        "bad = [m for m in sys.modules if m.startswith(heavy)];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_errors_share_one_base() -> None:
    from hitl_langgraph import errors

    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, errors.HitlError), name
