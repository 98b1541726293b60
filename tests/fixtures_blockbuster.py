"""``no_blocking``: blockbuster configured as ``langgraph dev`` configures it.

Any blocking call (sqlite3, psycopg's sync driver, ``time.sleep``, socket I/O, ...) made
on a thread that runs an event loop raises ``BlockingError`` while it is active, so an
async test using it proves the package never blocks the loop the Agent Server runs on.
The functions the server lets through (``langgraph_runtime_inmem.queue``'s
``_enable_blockbuster``: file reads/writes, ``os.stat``, ``threading.Lock.acquire``, ...)
are let through here too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

# what langgraph dev (langgraph-runtime-inmem 0.36) deactivates
SERVER_ALLOWS = (
    "os.stat",
    "os.listdir",
    "os.remove",
    "io.BufferedReader.read",
    "io.BufferedWriter.write",
    "io.TextIOWrapper.read",
    "io.TextIOWrapper.write",
    "threading.Lock.acquire",
)


@pytest.fixture
def no_blocking() -> Iterator[Any]:
    blockbuster = pytest.importorskip("blockbuster")
    bb = blockbuster.BlockBuster(excluded_modules=[])
    for name in list(bb.functions):
        if name in SERVER_ALLOWS or name.startswith("os.path."):
            bb.functions.pop(name).deactivate()
    bb.activate()
    try:
        yield bb
    finally:
        bb.deactivate()
