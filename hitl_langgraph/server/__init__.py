"""Pieces for running gated graphs on the LangGraph Agent Server (``langgraph dev`` / ``up``).

Layer 10: may import ``inbox``, ``gates``, ``store``, ``audit`` and the foundation.

* :func:`~hitl_langgraph.server.identity.reviewer_from_user` - the authenticated server user
  as a :class:`~hitl_langgraph.inbox.Reviewer`;
* :func:`~hitl_langgraph.server.app.create_inbox_app` - the inbox over HTTP (``http.app``);
* :func:`~hitl_langgraph.server.remote.remote_graph` - a deployment's graph (``RemoteGraph``)
  for :class:`~hitl_langgraph.inbox.Inbox` and ``hitl --deployment URL --graph-id ID``.
"""
