"""Helpers shared by the store backends: field lists, value checks, datetime
normalisation, row decoding, SQL statement builders (parameterised by the driver's
placeholder), the audit staging step and the fnmatch-glob to SQL regex translation."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import fields, replace
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

from ..errors import AlreadyDecided, ConfigurationError
from .keys import mac_hex
from .records import ApprovalRecord, AuditEvent, ExecutionRecord, audit_hash

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_FIELDS",
    "AUDIT_STREAMS",
    "EXEC_FIELDS",
    "EXEC_TIME_FIELDS",
    "JSON_FIELDS",
    "REQUEST_FIELDS",
    "TIME_FIELDS",
    "already_decided",
    "audit_query",
    "audit_row",
    "aware",
    "check_changes",
    "dumps",
    "equal_clauses",
    "expected_statuses",
    "glob_regex",
    "insert_sql",
    "native_row",
    "stage_audit",
    "stream_of",
    "text_dt",
    "text_row",
    "text_ts",
    "update_sql",
    "utc",
    "where_sql",
]

T = TypeVar("T")

REQUEST_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ApprovalRecord))
JSON_FIELDS: frozenset[str] = frozenset(
    {"args", "reasons", "approver_roles", "allowed_decisions", "approvals", "decision", "metadata"}
)
TIME_FIELDS: frozenset[str] = frozenset({"created_at", "updated_at", "expires_at", "decided_at"})
EXEC_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ExecutionRecord))
EXEC_TIME_FIELDS: frozenset[str] = frozenset({"started_at", "finished_at"})
AUDIT_FIELDS: tuple[str, ...] = (
    "seq",
    "event",
    "at",
    "request_id",
    "thread_id",
    "actor",
    "data",
    "prev_hash",
    "hash",
    "stream",
    "stream_seq",
    "mac",
    "key_id",
)
"""The audit columns in the order the SQL backends insert them."""

AUDIT_STREAMS = 16
"""How many per-stream chains new audit rows spread over (by thread id)."""
AUDIT_COLUMNS = ", ".join(AUDIT_FIELDS)


def utc(value: datetime, what: str) -> datetime:
    """``value`` converted to UTC; naive datetimes are refused (their instant is unknown)."""
    if not isinstance(value, datetime):
        raise ConfigurationError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigurationError(
            f"{what} is a naive datetime ({value.isoformat()}); pass a timezone-aware one, "
            "e.g. datetime.now(timezone.utc)"
        )
    return value.astimezone(timezone.utc)


def text_ts(value: datetime | None, what: str) -> str | None:
    """Fixed-width ISO-8601 UTC text (how SQLite stores timestamps): text order is time
    order."""
    return None if value is None else utc(value, what).isoformat(timespec="microseconds")


def text_dt(text: str | None) -> datetime | None:
    """A timestamp stored by :func:`text_ts`, read back (``None`` stays ``None``)."""
    return None if text is None else datetime.fromisoformat(text)


def aware(value: datetime | None) -> datetime | None:
    """A timestamp read back from PostgreSQL, in UTC (``None`` stays ``None``)."""
    return None if value is None else value.astimezone(timezone.utc)


class _Row(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...


_json_decode = json.JSONDecoder().decode


def text_row(
    cls: Callable[..., T],
    names: Sequence[str],
    row: _Row,
    *,
    json_fields: Collection[str] = (),
    time_fields: Collection[str] = (),
    bool_fields: Collection[str] = (),
) -> T:
    """A record from an SQLite row: JSON text parsed, ISO timestamps and 0/1 flags decoded."""
    values: dict[str, Any] = {}
    for name in names:
        raw = row[name]
        if raw is None:
            values[name] = None
        elif name in json_fields:
            # the empty containers are most JSON columns of most rows: skip the parser
            values[name] = [] if raw == "[]" else {} if raw == "{}" else _json_decode(raw)
        elif name in time_fields:
            values[name] = datetime.fromisoformat(raw)
        elif name in bool_fields:
            values[name] = bool(raw)
        else:
            values[name] = raw
    return cls(**values)


def native_row(
    cls: Callable[..., T], names: Sequence[str], row: _Row, *, time_fields: Collection[str] = ()
) -> T:
    """A record from a PostgreSQL row (psycopg already decoded JSON): timestamps in UTC."""
    return cls(**{name: aware(row[name]) if name in time_fields else row[name] for name in names})


def dumps(value: Any) -> str:
    """JSON text as stored: compact, ASCII-only (no raw NULs), ``str`` for unknown types."""
    return json.dumps(value, separators=(",", ":"), default=str)


def check_changes(changes: Mapping[str, Any]) -> None:
    """Refuse field names that are not :class:`ApprovalRecord` fields."""
    unknown = sorted(set(changes) - set(REQUEST_FIELDS))
    if unknown:
        raise ConfigurationError(
            f"update_request() got unknown field(s) {', '.join(map(repr, unknown))}; "
            f"valid fields are: {', '.join(REQUEST_FIELDS)}"
        )


def expected_statuses(expected: str | Sequence[str] | None) -> list[str] | None:
    if expected is None:
        return None
    if isinstance(expected, str):
        return [expected]
    return list(expected)


def insert_sql(table: str, names: Sequence[str], key: str, mark: str) -> str:
    """``INSERT`` of the ``names`` columns that does nothing when ``key`` already exists
    (``mark`` is the driver's placeholder)."""
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))}) "
        f"ON CONFLICT ({key}) DO NOTHING"
    )


def update_sql(table: str, names: Sequence[str], key: str, mark: str) -> str:
    """``UPDATE`` of the ``names`` columns of the row with the given ``key``."""
    sets = ", ".join(f"{name} = {mark}" for name in names)
    return f"UPDATE {table} SET {sets} WHERE {key} = {mark}"


def where_sql(clauses: Sequence[str]) -> str:
    """``" WHERE a AND b"`` for the clauses, ``""`` for none."""
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


def equal_clauses(pairs: Sequence[tuple[str, Any]], mark: str) -> tuple[list[str], list[Any]]:
    """``column = <mark>`` clauses and their parameters, for the pairs whose value is set
    (``mark`` is the driver's placeholder)."""
    clauses = [f"{column} = {mark}" for column, value in pairs if value is not None]
    return clauses, [value for _, value in pairs if value is not None]


def already_decided(request_id: str, status: str, decided_by: str | None) -> AlreadyDecided:
    """The error a failed compare-and-set raises (same message as the memory store)."""
    return AlreadyDecided(
        f"request {request_id!r} is already {status}"
        + (f" (decided by {decided_by})" if decided_by else ""),
        request_id=request_id,
        status=status,
        decided_by=decided_by,
    )


def audit_row(event: AuditEvent, at: Any) -> tuple[Any, ...]:
    """The ``AUDIT_FIELDS`` values of a staged event, ``at`` as the backend stores it."""
    return (
        event.seq,
        event.event,
        at,
        event.request_id,
        event.thread_id,
        event.actor,
        dumps(event.data),
        event.prev_hash,
        event.hash,
        event.stream,
        event.stream_seq,
        event.mac,
        event.key_id,
    )


def stream_of(event: AuditEvent, streams: int = AUDIT_STREAMS) -> int:
    """The stream an event is appended to: by thread (else request) id, so one request's
    events stay in one chain; events of neither go to stream 0."""
    key = event.thread_id or event.request_id
    return 0 if not key else zlib.crc32(key.encode()) % streams


def audit_query(
    after_seq: int, limit: int | None, request_id: str | None, mark: str
) -> tuple[str, list[Any]]:
    """The ``list_audit`` query and its parameters (``mark``: the driver's placeholder)."""
    sql = f"SELECT {AUDIT_COLUMNS} FROM hitl_audit WHERE seq > {mark}"
    params: list[Any] = [after_seq]
    if request_id is not None:
        sql += f" AND request_id = {mark}"
        params.append(request_id)
    sql += " ORDER BY seq"
    if limit is not None:
        sql += f" LIMIT {mark}"
        params.append(limit)
    return sql, params


def stage_audit(
    event: AuditEvent,
    *,
    seq: int | None,
    prev_hash: str,
    stream: int,
    stream_seq: int,
    key: tuple[str, bytes] | None = None,
) -> AuditEvent:
    """``event`` as appended as row ``stream_seq`` of ``stream`` after ``prev_hash``: ``at``
    in UTC (so the hash survives the round trip through the database), the chain fields
    filled in and, with ``key`` (``(key_id, bytes)``), the keyed ``mac``."""
    staged = replace(
        event,
        at=utc(event.at, "audit event 'at'"),
        seq=seq,
        prev_hash=prev_hash,
        stream=stream,
        stream_seq=stream_seq,
        hash="",
        mac=None,
        key_id=None,
    )
    h = audit_hash(prev_hash, staged)
    if key is None:
        return replace(staged, hash=h)
    return replace(staged, hash=h, mac=mac_hex(key[1], h), key_id=key[0])


# -- fnmatch globs as PostgreSQL regular expressions ---------------------------------


def _esc(ch: str) -> str:
    return ch if ch.isascii() and ch.isalnum() else f"\\U{ord(ch):08x}"


def _bracket(body: str) -> str | None:
    """A ``[...]`` body (without brackets) as a PG bracket expression; ``None`` = empty set."""
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    parts: list[str] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            lo, hi = body[i], body[i + 2]
            if lo <= hi:  # fnmatch drops reversed ranges
                parts.append(f"\\U{ord(lo):08x}-\\U{ord(hi):08x}")
            i += 3
        else:
            parts.append(f"\\U{ord(body[i]):08x}")
            i += 1
    if not parts:
        return "." if negate else None
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def glob_regex(pattern: str) -> str | None:
    """The PostgreSQL (ARE) regex matching what ``fnmatch.fnmatchcase(name, pattern)``
    matches; ``None`` when the pattern can match nothing (an empty ``[]`` set)."""
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if out[-1] != ".*":
                out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal "["
                out.append(_esc("["))
                continue
            part = _bracket(pattern[i:j])
            if part is None:
                return None
            out.append(part)
            i = j + 1
        else:
            out.append(_esc(c))
    out.append("$")
    return "".join(out)
