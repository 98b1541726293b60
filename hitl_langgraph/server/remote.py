"""A deployment's graph as something the :class:`~hitl_langgraph.inbox.Inbox` resumes.

``remote_graph(url, graph_id)`` is LangGraph's ``RemoteGraph`` for an assistant or
graph id on an Agent Server (``langgraph dev``, ``langgraph up``, the hosted platform).
The inbox then reads the thread's state and resumes it through the server's API
(``threads.get_state``, ``runs`` with ``Command(resume=...)``), with the server's own
checkpointer - the graph object imported from the deployment's module has none, which
is why ``--graph module:attr`` fails there with "No checkpointer set".
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigurationError

__all__ = ["remote_graph"]


def remote_graph(
    url: str,
    graph_id: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """``RemoteGraph(graph_id, url=url)``; ``token`` (default env ``HITL_TOKEN``) is
    sent as ``Authorization: Bearer <token>`` for a deployment with custom auth."""
    if not url or "://" not in url:
        raise ConfigurationError(
            f"deployment URL {url!r} is not a URL; pass e.g. http://127.0.0.1:2024"
        )
    if not graph_id:
        raise ConfigurationError(
            "a deployment needs the graph (assistant) id to resume, e.g. --graph-id agent; "
            "langgraph.json lists them under 'graphs'"
        )
    from langgraph.pregel.remote import RemoteGraph

    token = token if token is not None else os.environ.get("HITL_TOKEN")
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    return RemoteGraph(graph_id, url=url, headers=all_headers or None)
