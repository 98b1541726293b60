"""One ``phoenix serve`` (free port, temp dir) shared by the comparisons of a run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

_server: Any = None
_tmp: tempfile.TemporaryDirectory[str] | None = None


def shared_server() -> Any | None:
    """The running server, started on first use; ``None`` when Phoenix is not installed."""
    global _server, _tmp
    if _server is not None:
        return _server
    from hitl_langgraph.tracing._server import PhoenixServer, phoenix_command

    if phoenix_command() is None:
        return None
    _tmp = tempfile.TemporaryDirectory()
    _server = PhoenixServer(workdir=Path(_tmp.name) / "phoenix", startup_timeout=120).start()
    return _server


def stop() -> None:
    global _server, _tmp
    if _server is not None:
        _server.stop()
        _server = None
    if _tmp is not None:
        _tmp.cleanup()
        _tmp = None
