"""A bounded on-disk spool for spans the collector did not take.

When an export fails (Phoenix down, restarting, unreachable) the batch is written to a
file in OTLP/protobuf form, the exact body ``POST /v1/traces`` takes, instead of being
counted lost; at shutdown whatever is still queued goes there too. When an export
succeeds again, or a later process starts tracing to the same place, the files are
re-sent oldest first and deleted once the collector accepted them. Review requests on
those spans then attach late rather than never.

Bounded: beyond ``max_bytes`` the oldest files are deleted (their spans counted in
``dropped``). Writes are atomic (temp file + rename), so a crash mid-write leaves no
half file; a file the collector refuses as malformed (HTTP 400) is deleted and counted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigurationError, missing_dependency

try:
    from opentelemetry.sdk.trace import ReadableSpan
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_dependency("opentelemetry-sdk", "tracing", exc) from exc

__all__ = ["DEFAULT_SPOOL_BYTES", "SPOOL_DIR_ENV", "SpanSpool", "SpoolStats", "http_poster"]

logger = logging.getLogger("hitl_langgraph.tracing")

DEFAULT_SPOOL_BYTES = 64 * 1024 * 1024
SPOOL_DIR_ENV = "HITL_SPAN_SPOOL_DIR"
_SUFFIX = ".otlp"

Poster = Callable[[bytes], "bool | None"]
"""Sends one OTLP body: True accepted, False refused for good (malformed), None: try
again later (unreachable, 5xx)."""


@dataclass(frozen=True)
class SpoolStats:
    """What the spool holds and did.

    Attributes:
        files, spans, bytes: What is on disk now, waiting to be re-sent.
        spooled: Spans written to the spool by this process.
        resent: Spans re-sent from the spool (by this process) and accepted.
        dropped: Spans deleted to keep the spool under ``max_bytes``, or refused by
            the collector as malformed.
    """

    files: int = 0
    spans: int = 0
    bytes: int = 0
    spooled: int = 0
    resent: int = 0
    dropped: int = 0


def _encode(batch: Sequence[ReadableSpan]) -> bytes:
    try:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    except ImportError as exc:
        raise missing_dependency("opentelemetry-exporter-otlp-proto-http", "tracing", exc) from exc
    return bytes(encode_spans(batch).SerializeToString())


def http_poster(endpoint: str, headers: Mapping[str, str], timeout: float) -> Poster:
    """A :data:`Poster` for an OTLP/HTTP traces endpoint."""

    def post(body: bytes) -> bool | None:
        req = urllib.request.Request(endpoint, data=body, method="POST")
        req.add_header("Content-Type", "application/x-protobuf")
        for k, v in headers.items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return bool(200 <= int(resp.status) < 300)
        except urllib.error.HTTPError as exc:
            return False if exc.code == 400 else None
        except (OSError, ValueError):
            return None

    return post


class SpanSpool:
    """Spans on disk, waiting for the collector.

    Args:
        directory: Where the files go (created if missing). One directory per
            collector and project; :func:`~hitl_langgraph.tracing.setup_tracing` picks
            ``<spool_dir>/<project>``.
        max_bytes: Bound on the files' total size; the oldest go first.
        poster: Sends a file's body; ``None`` only spools (nothing is re-sent).
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, max_bytes: int = DEFAULT_SPOOL_BYTES,
        poster: Poster | None = None,
    ) -> None:  # fmt: skip
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ConfigurationError(f"spool max_bytes must be a positive int, got {max_bytes!r}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.poster = poster
        self._lock = threading.Lock()
        self._spooled = self._resent = self._dropped = 0
        self.directory.mkdir(parents=True, exist_ok=True)

    # -- files ---------------------------------------------------------------------------
    def _files(self) -> list[Path]:
        try:
            return sorted(p for p in self.directory.iterdir() if p.name.endswith(_SUFFIX))
        except FileNotFoundError:
            return []

    @staticmethod
    def _count(path: Path) -> int:
        try:
            return int(path.name.split("-")[1])
        except (IndexError, ValueError):
            return 0

    def has_files(self) -> bool:
        return bool(self._files())

    def write(self, batch: Sequence[ReadableSpan]) -> bool:
        """Spool ``batch``; False if it could not be written (disk full, say)."""
        if not batch:
            return True
        try:
            body = _encode(batch)
            name = f"{time.time_ns():020d}-{len(batch)}-{uuid.uuid4().hex[:8]}{_SUFFIX}"
            tmp = self.directory / f".{name}.tmp"
            tmp.write_bytes(body)
            os.replace(tmp, self.directory / name)
        except Exception:
            logger.warning("hitl_langgraph tracing: could not spool %d span(s)", len(batch),
                           exc_info=True)  # fmt: skip
            return False
        with self._lock:
            self._spooled += len(batch)
        self._bound()
        return True

    def _bound(self) -> None:
        files = self._files()
        sizes = {p: _size(p) for p in files}
        total = sum(sizes.values())
        while files and total > self.max_bytes:
            oldest = files.pop(0)
            total -= sizes[oldest]
            self._delete(oldest, dropped=True)
            logger.warning(
                "hitl_langgraph tracing: span spool over %d bytes; dropped %s (%d span(s))",
                self.max_bytes, oldest.name, self._count(oldest),
            )  # fmt: skip

    def _delete(self, path: Path, *, dropped: bool = False, resent: bool = False) -> None:
        n = self._count(path)
        try:
            path.unlink()
        except FileNotFoundError:
            return  # another process re-sent it
        with self._lock:
            if dropped:
                self._dropped += n
            if resent:
                self._resent += n

    def resend(self, deadline: float | None = None) -> bool | None:
        """Re-send spooled files oldest first until done, a failure, or ``deadline``
        (``time.monotonic()``). True: all sent; None: the collector is unreachable."""
        if self.poster is None:
            return None
        for path in self._files():
            if deadline is not None and time.monotonic() >= deadline:
                return None
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                continue
            ok = self.poster(body)
            if ok is None:
                return None
            self._delete(path, dropped=not ok, resent=bool(ok))
        return True

    def stats(self) -> SpoolStats:
        files = self._files()
        with self._lock:
            return SpoolStats(
                files=len(files),
                spans=sum(self._count(p) for p in files),
                bytes=sum(_size(p) for p in files),
                spooled=self._spooled,
                resent=self._resent,
                dropped=self._dropped,
            )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
