"""Pieces for running gated graphs on the LangGraph Agent Server (``langgraph dev`` / ``up``).

Layer 10: may import ``inbox``, ``gates``, ``store``, ``audit`` and the foundation.
"""
