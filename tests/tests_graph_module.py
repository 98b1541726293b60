"""The graph `hitl --graph tests_graph_module:app` loads in the CLI tests.

It opens the same store, SQLite checkpointer and ledger file as the test that prepared
them (paths from the environment), like an application module would.
"""

from __future__ import annotations

import os

from inbox_graphs import FileLedger, build_app, open_checkpointer

from hitl_langgraph import open_store

store = open_store(os.environ["HITL_STORE_URL"])
app = build_app(
    store,
    open_checkpointer("sqlite", os.environ["HITL_TEST_CHECKPOINTS"]),
    FileLedger(os.environ["HITL_TEST_LEDGER"]),
)
