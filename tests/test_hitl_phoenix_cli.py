"""``hitl phoenix``: names the extra when the server is missing, prints the URL when ready,
and stops its ``phoenix serve`` child on SIGTERM and SIGINT (also during start-up)
without a traceback."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hitl_langgraph.review import cli as review_cli
from hitl_langgraph.tracing import _server
from hitl_langgraph.tracing._server import free_port


def test_missing_server_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_server, "_server_installed", lambda: False)
    assert _server.phoenix_command() is None
    err = io.StringIO()
    code = review_cli.main(["phoenix", "--port", "1"], out=io.StringIO(), err=err)
    assert code == 2 and "pip install 'hitl-langgraph[phoenix-server]'" in err.getvalue()


def test_the_client_package_alone_is_not_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # arize-phoenix-client provides phoenix/client only: that is what `.[all]` installs
    fake = tmp_path / "site" / "phoenix"
    (fake / "client").mkdir(parents=True)
    (fake / "client" / "__init__.py").write_text("")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "site")])
    for name in [m for m in sys.modules if m == "phoenix" or m.startswith("phoenix.")]:
        monkeypatch.delitem(sys.modules, name)
    assert _server._server_installed() is False


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return {int(x) for x in out.stdout.split()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hitl_langgraph.review.cli", "phoenix", "--port", str(port),
         "--grpc-port", str(free_port()), "--data", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return proc, port


@pytest.mark.phoenix
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_child_without_a_traceback(tmp_path: Path, sig: signal.Signals) -> None:
    if _server.phoenix_command() is None:
        pytest.skip("the Phoenix server is not installed")
    proc, port = _start(tmp_path)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once /healthz answers
        assert f"Phoenix is running at http://127.0.0.1:{port}" in line, line
        (child,) = _children(proc.pid)
        proc.send_signal(sig)
        assert proc.wait(30) == 0
        _, err = proc.communicate(timeout=10)
        assert "Traceback" not in err, err
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "phoenix serve outlived hitl phoenix"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert any((tmp_path / "data").glob("*.db"))  # --data is Phoenix's working directory
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


@pytest.mark.phoenix
def test_ctrl_c_during_start_up_stops_quietly(tmp_path: Path) -> None:
    if _server.phoenix_command() is None:
        pytest.skip("the Phoenix server is not installed")
    proc, _ = _start(tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not _children(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        (child,) = _children(proc.pid)
        time.sleep(1.0)  # phoenix serve is importing, not healthy yet
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        out, err = proc.communicate(timeout=10)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        assert "Phoenix is running" not in out
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
