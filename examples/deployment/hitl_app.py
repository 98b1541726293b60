"""The inbox over HTTP as a custom route (``http.app`` in ``langgraph.auth.json``)."""

from __future__ import annotations

import os

from hitl_langgraph import open_store
from hitl_langgraph.server.app import create_inbox_app

app = create_inbox_app(open_store(os.environ.get("HITL_STORE_URL", "sqlite:///hitl.db")))
