"""The store conformance suites again, every call going through the async twin.

Each test of ``test_store_conformance`` and ``test_store_review_conformance`` runs here
with a ``store`` whose public methods await :class:`AsyncStore` on an event loop in a
background thread (blockbuster active on that loop) - so the twin keeps every rule of
``hitl_langgraph.store.base``: compare-and-set, one claim, audit chain, review budgets.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_store import BACKENDS
from test_store_conformance import *  # noqa: F403  (re-collected against the twin)
from test_store_review_conformance import *  # noqa: F403

from hitl_langgraph.store import ApprovalStore, AsyncStore, MemoryStore

# only the tests that take the ``store`` fixture (the others open their own stores)
for _name, _fn in list(globals().items()):
    if _name.startswith("test_") and "store" not in inspect.signature(_fn).parameters:
        del globals()[_name]

_PUBLIC = sorted(
    n
    for n in ApprovalStore.__abstractmethods__ | {"verify_audit", "setup"}
    if hasattr(AsyncStore, n)
)


class _Loop:
    """An event loop in its own thread, with blockbuster watching it."""

    def __init__(self, bb: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _via_twin(inner: ApprovalStore, loop: _Loop) -> ApprovalStore:
    """An object of ``inner``'s class whose public store methods go through the twin;
    other attributes (``path``, ``conninfo``, ``_audit`` used to tamper) are ``inner``'s."""
    twin = AsyncStore.of(inner)
    cls = type(inner)

    def route(name: str) -> Any:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            return loop.call(getattr(twin, name)(*args, **kwargs))

        method.__name__ = name
        return method

    body: dict[str, Any] = {n: route(n) for n in _PUBLIC}
    body["__getattr__"] = lambda self, attr: getattr(inner, attr)
    body["close"] = lambda self: None
    facade_cls = type(cls.__name__, (cls,), body)
    facade: ApprovalStore = object.__new__(facade_cls)
    return facade


@pytest.fixture(params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, no_blocking: Any
) -> Iterator[ApprovalStore]:
    backend: str = request.param
    inner: ApprovalStore
    if backend == "memory":
        inner = MemoryStore()
    elif backend == "sqlite":
        from hitl_langgraph.store.sqlite import SqliteStore

        inner = SqliteStore(tmp_path / "hitl.db")
    else:
        from hitl_langgraph.store.postgres import PostgresStore

        inner = PostgresStore(request.getfixturevalue("postgres_schema_url"))
    loop = _Loop(no_blocking)
    facade = _via_twin(inner, loop)
    facade.setup()
    try:
        yield facade
    finally:
        AsyncStore.of(inner).shutdown()
        inner.close()
        loop.stop()
