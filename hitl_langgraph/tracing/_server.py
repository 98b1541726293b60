"""Start and stop a local ``phoenix serve`` (for tests, benchmarks and the CLI).

Standard library only, and it never imports ``phoenix``: the server runs in a child
process started from the ``phoenix`` script next to the running interpreter (or
``python -m phoenix.server.main serve``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any

from ..errors import PhoenixStartError

__all__ = ["PhoenixServer", "PhoenixStartError", "free_port", "phoenix_command"]

_LOG_TAIL_LINES = 40


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _server_installed() -> bool:
    """Whether ``phoenix.server`` (the ``arize-phoenix`` package) is installed.

    ``arize-phoenix-client`` alone also provides a ``phoenix`` package (``phoenix.client``),
    so ``phoenix`` being importable is not enough. Looks at the files only: importing
    the server package takes seconds.
    """
    spec = importlib.util.find_spec("phoenix")
    if spec is None:
        return False
    for location in spec.submodule_search_locations or ():
        if (Path(location) / "server" / "main.py").is_file():
            return True
    return False


def phoenix_command() -> list[str] | None:
    """The command that starts the Phoenix server, or ``None`` if it is not installed."""
    if not _server_installed():
        return None
    script = Path(sys.executable).parent / "phoenix"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), "serve"]
    return [sys.executable, "-m", "phoenix.server.main", "serve"]


class PhoenixServer:
    """A ``phoenix serve`` child process on a fixed port and working directory.

    ``stop()`` then ``start()`` brings the server back on the same port with the same
    database, which is what collector-outage tests need.

    Args:
        port: HTTP port (UI, REST and OTLP/HTTP); a free one by default.
        grpc_port: OTLP/gRPC port; a free one by default.
        workdir: ``PHOENIX_WORKING_DIR`` (the SQLite database lives there); a new
            temporary directory by default.
        host: Interface to bind.
        startup_timeout: Seconds to wait for ``GET /healthz`` to answer 200.
        command: The command to run; defaults to :func:`phoenix_command`.
        env: Extra environment for the server, e.g. ``PHOENIX_ENABLE_AUTH``.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        grpc_port: int | None = None,
        workdir: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 90.0,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.extra_env = dict(env or {})
        self.port = port or free_port(host)
        self.grpc_port = grpc_port or free_port(host)
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="phoenix-"))
        self.log_path = self.workdir / "phoenix-server.log"
        self.startup_timeout = startup_timeout
        self._command = command
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:6006``."""
        return f"http://{self.host}:{self.port}"

    @property
    def otlp_endpoint(self) -> str:
        """OTLP/HTTP traces URL: ``url + "/v1/traces"``."""
        return self.url + "/v1/traces"

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    def start(self) -> PhoenixServer:
        """Start the server (no-op if running) and wait until ``/healthz`` answers 200.

        Raises:
            PhoenixStartError: Phoenix is not installed, exited, or stayed unhealthy for
                ``startup_timeout`` seconds; the message holds the end of its log.
        """
        if self.running:
            return self
        command = self._command or phoenix_command()
        if command is None:
            raise PhoenixStartError(
                "the Phoenix server is not installed (the `tracing` and `all` extras bring only "
                "its client): pip install 'hitl-langgraph[phoenix-server]'"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log.write(f"\n--- starting {' '.join(command)} on {self.url}\n".encode())
        self._log.flush()
        self._proc = subprocess.Popen(
            command,
            env=self._env(),
            cwd=self.workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections are accepted but never answered.

        This is the "hung collector" outage: unlike a stopped server (connection
        refused), every export waits for its full timeout. Undo with :meth:`resume`.
        """
        if self._proc is not None and self._proc.poll() is None:
            _signal_group(self._proc, signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze a server frozen by :meth:`pause` (SIGCONT)."""
        if self._proc is not None and self._proc.poll() is None:
            _signal_group(self._proc, signal.SIGCONT)

    def stop(self, timeout: float = 15.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``timeout`` s). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            _signal_group(proc, signal.SIGCONT)  # a paused server cannot act on SIGTERM
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def healthy(self, timeout: float = 2.0) -> bool:
        """True if ``GET /healthz`` answers 200 now."""
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=timeout) as resp:
                return int(resp.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def spans(self, project: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Spans of ``project`` via ``GET /v1/projects/{project}/spans`` (all pages).

        Phoenix answers 404 until a project's first span has arrived; that gives ``[]``.

        Args:
            project: Project name.
            limit: Stop after this many spans (``None``: all of them).
        """
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        path = f"/v1/projects/{urllib.parse.quote(project, safe='')}/spans"
        while limit is None or len(out) < limit:
            page = 1000 if limit is None else min(1000, limit - len(out))
            query = {"limit": str(page)}
            if cursor:
                query["cursor"] = cursor
            try:
                body = self._get_json(path + "?" + urllib.parse.urlencode(query))
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return out
                raise
            out.extend(body.get("data") or [])
            cursor = body.get("next_cursor")
            if not cursor:
                break
        return out

    def wait_for_spans(
        self, project: str, count: int, *, timeout: float = 20.0, interval: float = 0.25
    ) -> list[dict[str, Any]]:
        """Poll :meth:`spans` until at least ``count`` spans are there (or time runs out).

        Returns:
            All spans seen last (possibly fewer than ``count`` on timeout).
        """
        deadline = time.monotonic() + timeout
        spans = self.spans(project)
        while len(spans) < count and time.monotonic() < deadline:
            time.sleep(interval)
            spans = self.spans(project)
        return spans

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> PhoenixServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"PhoenixServer({self.url}, workdir={str(self.workdir)!r}, {state})"

    # --- internals ----------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in (
            "PHOENIX_SQL_DATABASE_URL",
            "PHOENIX_COLLECTOR_ENDPOINT",
            "PHOENIX_HOST_ROOT_PATH",
        ):
            env.pop(name, None)
        env.update(
            PHOENIX_PORT=str(self.port),
            PHOENIX_GRPC_PORT=str(self.grpc_port),
            PHOENIX_HOST=self.host,
            PHOENIX_WORKING_DIR=str(self.workdir),
            PHOENIX_TELEMETRY_ENABLED="false",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise PhoenixStartError(
                    f"phoenix serve exited (code {code}) before becoming healthy on "
                    f"{self.url}; log {self.log_path}:\n{self.log_tail()}"
                )
            if self.healthy(timeout=1.0):
                return
            time.sleep(0.2)
        raise PhoenixStartError(
            f"phoenix serve not healthy on {self.url}/healthz after {self.startup_timeout:.0f} s; "
            f"log {self.log_path}:\n{self.log_tail()}"
        )

    def _get_json(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            data = json.loads(resp.read())
        return data if isinstance(data, dict) else {"data": data}


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the child's own process group (it was started in a new session)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
