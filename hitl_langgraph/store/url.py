"""``open_store(url)``: choose and set up a store backend from a URL."""

from __future__ import annotations

from ..errors import ConfigurationError
from .aio import AsyncStore
from .base import ApprovalStore
from .memory import MemoryStore

__all__ = ["open_async_store", "open_store"]


def open_store(url: str, *, setup: bool = True) -> ApprovalStore:
    """Open the store at ``url`` (``memory://``, ``sqlite:///file.db``, ``postgresql://...``).

    Tables are created when missing unless ``setup=False``.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"store URL {url!r} has no scheme; use 'memory://', 'sqlite:///hitl.db' or "
            "'postgresql://user@host:5432/db'"
        )
    scheme = url.split("://", 1)[0].lower()
    store: ApprovalStore
    if scheme == "memory":
        store = MemoryStore()
    elif scheme == "sqlite":
        from .sqlite import SqliteStore

        store = SqliteStore.from_url(url)
    elif scheme in ("postgres", "postgresql"):
        from .postgres import PostgresStore

        store = PostgresStore.from_url(url)
    else:
        raise ConfigurationError(
            f"unknown store scheme {scheme!r} in {url!r}; use memory://, sqlite:/// or postgresql://"
        )
    if setup:
        store.setup()
    return store


async def open_async_store(url: str, *, setup: bool = True) -> AsyncStore:
    """Open the store at ``url`` off the event loop and return its async twin
    (:meth:`AsyncStore.of`; the sync store is ``twin.sync``)."""
    import asyncio

    store = await asyncio.to_thread(open_store, url, setup=setup)
    return AsyncStore.of(store)
