"""SQLite store (``sqlite:///path.db``): stdlib ``sqlite3``, WAL, safe across processes.

Every table is prefixed ``hitl_`` so the file can be shared with LangGraph's
``SqliteSaver`` checkpoints. Each compare-and-set, claim and audit append runs in a
``BEGIN IMMEDIATE`` transaction: SQLite's single write lock then serialises them across
threads *and* processes, so two writers can never both win.
"""

from __future__ import annotations

import fnmatch
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from ..errors import ConfigurationError, RequestNotFound, StoreError
from ._common import (
    AUDIT_COLUMNS,
    AUDIT_FIELDS,
    EXEC_FIELDS,
    EXEC_TIME_FIELDS,
    JSON_FIELDS,
    REQUEST_FIELDS,
    TIME_FIELDS,
    already_decided,
    audit_query,
    audit_row,
    check_changes,
    dumps,
    expected_statuses,
    insert_sql,
    stage_audit,
    stream_of,
    text_row,
    update_sql,
    where_sql,
)
from ._common import text_ts as _ts
from ._review_sqlite import SqliteReviewMixin
from .base import ApprovalStore, RequestFilter
from .chain import AuditHeads, StreamHead
from .records import ApprovalRecord, AuditEvent, ExecutionRecord

__all__ = ["INDEXES", "MIGRATIONS", "SqliteStore"]

SYNCHRONOUS = ("off", "normal", "full", "extra")
"""Accepted values of the ``synchronous`` option (SQLite's ``PRAGMA synchronous``)."""

MIGRATIONS: list[str] = [
    # version 1: requests, execution journal, audit trail
    """
    CREATE TABLE hitl_requests (
        request_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, node TEXT NOT NULL,
        tool TEXT NOT NULL, args TEXT NOT NULL, digest TEXT NOT NULL, score REAL NOT NULL,
        route TEXT NOT NULL, reasons TEXT NOT NULL, status TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, checkpoint_ns TEXT NOT NULL,
        tool_call_id TEXT, kind TEXT NOT NULL, interrupt_id TEXT,
        approver_roles TEXT NOT NULL, allowed_decisions TEXT NOT NULL,
        quorum INTEGER NOT NULL, approvals TEXT NOT NULL, policy_version TEXT NOT NULL,
        requester TEXT, expires_at TEXT, on_expiry TEXT NOT NULL, parent_request_id TEXT,
        decision TEXT, decided_by TEXT, decided_at TEXT, metadata TEXT NOT NULL
    );
    CREATE INDEX hitl_requests_status ON hitl_requests (status, created_at, request_id);
    CREATE INDEX hitl_requests_thread ON hitl_requests (thread_id, created_at, request_id);
    CREATE INDEX hitl_requests_expiry ON hitl_requests (expires_at)
        WHERE expires_at IS NOT NULL;
    CREATE TABLE hitl_executions (
        request_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        worker TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        result_type TEXT,
        result BLOB,
        error TEXT
    );
    CREATE TABLE hitl_audit (
        seq INTEGER PRIMARY KEY,
        event TEXT NOT NULL,
        at TEXT NOT NULL,
        request_id TEXT,
        thread_id TEXT,
        actor TEXT,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX hitl_audit_request ON hitl_audit (request_id, seq);
    """,
    # version 2: asynchronous review - sampling decisions, collected verdicts, and the
    # outbox of annotations to mirror into Phoenix
    """
    CREATE TABLE hitl_review_samples (
        request_id TEXT PRIMARY KEY, project TEXT NOT NULL, sampled INTEGER NOT NULL,
        probability REAL NOT NULL, draw REAL NOT NULL, score REAL NOT NULL,
        reason TEXT NOT NULL, decided_at TEXT NOT NULL, due_at TEXT NOT NULL,
        priority INTEGER NOT NULL, tool TEXT NOT NULL, thread_id TEXT, trace_id TEXT,
        span_id TEXT, policy_version TEXT NOT NULL, reviewed_at TEXT, reviewed_by TEXT,
        metadata TEXT NOT NULL
    );
    CREATE INDEX hitl_review_samples_queue
        ON hitl_review_samples (project, sampled, due_at, request_id);
    CREATE INDEX hitl_review_samples_budget
        ON hitl_review_samples (project, sampled, decided_at);
    CREATE INDEX hitl_review_samples_span ON hitl_review_samples (span_id);
    CREATE TABLE hitl_reviews (
        review_id TEXT PRIMARY KEY, project TEXT NOT NULL, span_id TEXT NOT NULL,
        name TEXT NOT NULL, identifier TEXT NOT NULL, annotator_kind TEXT NOT NULL,
        source TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        collected_at TEXT NOT NULL, label TEXT, score REAL, explanation TEXT,
        reviewer TEXT, request_id TEXT, trace_id TEXT, phoenix_id TEXT,
        metadata TEXT NOT NULL
    );
    CREATE INDEX hitl_reviews_collected ON hitl_reviews (collected_at, review_id);
    CREATE INDEX hitl_reviews_span ON hitl_reviews (project, span_id);
    CREATE INDEX hitl_reviews_request ON hitl_reviews (request_id);
    CREATE TABLE hitl_outbox (
        entry_id TEXT PRIMARY KEY, project TEXT NOT NULL, span_id TEXT NOT NULL,
        name TEXT NOT NULL, identifier TEXT NOT NULL, payload TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, status TEXT NOT NULL,
        revision INTEGER NOT NULL, attempts INTEGER NOT NULL, next_attempt_at TEXT,
        last_error TEXT, mirrored_at TEXT, phoenix_id TEXT, request_id TEXT
    );
    CREATE INDEX hitl_outbox_status ON hitl_outbox (status, created_at, entry_id);
    """,
    # version 3: per-stream keyed audit chains (stream heads, a never-reused seq counter);
    # rows written before are kept as the legacy stream -1 (one global chain)
    """
    ALTER TABLE hitl_audit ADD COLUMN stream INTEGER;
    ALTER TABLE hitl_audit ADD COLUMN stream_seq INTEGER;
    ALTER TABLE hitl_audit ADD COLUMN mac TEXT;
    ALTER TABLE hitl_audit ADD COLUMN key_id TEXT;
    UPDATE hitl_audit SET stream = -1, stream_seq = seq;
    CREATE TABLE hitl_audit_heads (
        stream INTEGER PRIMARY KEY, n INTEGER NOT NULL, hash TEXT NOT NULL,
        seq INTEGER NOT NULL
    );
    INSERT INTO hitl_audit_heads (stream, n, hash, seq)
        SELECT -1, seq, hash, seq FROM hitl_audit ORDER BY seq DESC LIMIT 1;
    CREATE TABLE hitl_audit_counter (
        id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL
    );
    INSERT INTO hitl_audit_counter (id, last_seq) SELECT 1, COALESCE(MAX(seq), 0) FROM hitl_audit;
    """,
    # version 4: the execution journal tells a claim that never started ("running") from
    # a tool that was called ("started"). A legacy "running" row of a gated action may
    # have started: it is held for a human (`hitl recover`), never run again on a guess.
    """
    UPDATE hitl_executions SET state = 'started'
        WHERE state = 'running' AND request_id LIKE 'req!_%' ESCAPE '!';
    """,
]
"""Schema migrations; ``MIGRATIONS[i]`` is schema version ``i + 1``. Append, never edit."""

INDEXES: list[str] = [
    # keyset paging over every request (iter_requests / reconcile): without it each page
    # of ``ORDER BY created_at, request_id`` with no status filter scanned and sorted
    # the whole table
    "CREATE INDEX IF NOT EXISTS hitl_requests_created ON hitl_requests (created_at, request_id)",
]
"""Index-only schema additions, applied with ``IF NOT EXISTS`` on every ``setup()``
after the migrations: idempotent for new and existing databases alike."""

_INSERT = insert_sql("hitl_requests", REQUEST_FIELDS, "request_id", "?")
_AUDIT_INSERT = (
    f"INSERT INTO hitl_audit ({AUDIT_COLUMNS}) VALUES ({', '.join('?' * len(AUDIT_FIELDS))})"
)


def _encode(name: str, value: Any) -> Any:
    if name in JSON_FIELDS:
        return None if value is None and name == "decision" else dumps(value)
    if name in TIME_FIELDS:
        return _ts(value, name)
    return value


def _record(row: sqlite3.Row) -> ApprovalRecord:
    return text_row(
        ApprovalRecord, REQUEST_FIELDS, row, json_fields=JSON_FIELDS, time_fields=TIME_FIELDS
    )


def _audit(row: sqlite3.Row) -> AuditEvent:
    return text_row(AuditEvent, AUDIT_FIELDS, row, json_fields={"data"}, time_fields={"at"})


def _statements(script: str) -> Iterator[str]:
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    if buf.strip():
        yield buf.strip()


def _where(f: RequestFilter, after: tuple[datetime, str] | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if f.status is not None:
        if not f.status:
            clauses.append("0")
        elif len(f.status) == 1:
            clauses.append("status = ?")
            params.append(f.status[0])
        else:
            clauses.append(f"status IN ({', '.join('?' * len(f.status))})")
            params.extend(f.status)
    if f.thread_id is not None:
        clauses.append("thread_id = ?")
        params.append(f.thread_id)
    if f.tool is not None:
        # GLOB equals fnmatchcase for '*' and '?'; bracket sets go through Python.
        clauses.append("tool GLOB ?" if "[" not in f.tool else "hitl_fnmatch(tool, ?)")
        params.append(f.tool)
    if f.route is not None:
        clauses.append("route = ?")
        params.append(f.route)
    if f.min_score is not None:
        clauses.append("score >= ?")
        params.append(f.min_score)
    if f.role is not None:
        clauses.append(
            "(approver_roles = '[]' OR EXISTS "
            "(SELECT 1 FROM json_each(hitl_requests.approver_roles) WHERE value = ?))"
        )
        params.append(f.role)
    if f.expires_before is not None:
        clauses.append("expires_at < ?")
        params.append(_ts(f.expires_before, "expires_before"))
    if after is not None:
        clauses.append("(created_at, request_id) > (?, ?)")
        params.extend([_ts(after[0], "after"), after[1]])
    return where_sql(clauses), params


class SqliteStore(SqliteReviewMixin, ApprovalStore):
    """Approval store in an SQLite file (or ``:memory:``), shared safely across processes.

    One connection per store, guarded by a lock (``:memory:`` databases exist per
    connection); a forked child opens its own connection on first use.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 30.0, synchronous: str = "normal"
    ) -> None:
        if synchronous.lower() not in SYNCHRONOUS:
            raise ConfigurationError(
                f"synchronous={synchronous!r} is not one of {', '.join(SYNCHRONOUS)} "
                "(SQLite's PRAGMA synchronous; 'full' syncs on every commit)"
            )
        self.path = os.fspath(path)
        self.timeout = timeout
        self.synchronous = synchronous.lower()
        self.url = "sqlite:///" + self.path
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        """``sqlite:///rel.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``;
        options: ``?timeout=<seconds>`` sets the lock wait, ``?synchronous=full`` syncs
        the WAL on every commit (the default, ``normal``, syncs at checkpoints: a power
        loss may drop the last commits, never corrupt the file)."""
        prefix = "sqlite://"
        if not url.lower().startswith(prefix) or not url[len(prefix) :].startswith("/"):
            raise ConfigurationError(
                f"SQLite store URL {url!r} must look like 'sqlite:///relative.db', "
                "'sqlite:////absolute/path.db' or 'sqlite:///:memory:'"
            )
        rest, _, query = url[len(prefix) + 1 :].partition("?")
        if not rest:
            raise ConfigurationError(f"SQLite store URL {url!r} names no database file")
        timeout = 30.0
        synchronous = "normal"
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == "synchronous":
                if value.lower() not in SYNCHRONOUS:
                    raise ConfigurationError(
                        f"synchronous={value!r} in {url!r} is not one of {', '.join(SYNCHRONOUS)}"
                    )
                synchronous = value.lower()
                continue
            if key != "timeout":
                raise ConfigurationError(
                    f"unknown option {key!r} in SQLite store URL {url!r}; "
                    "use 'timeout' or 'synchronous'"
                )
            try:
                timeout = float(value)
            except ValueError:
                raise ConfigurationError(
                    f"timeout={value!r} in {url!r} is not a number of seconds"
                ) from None
        store = cls(rest, timeout=timeout, synchronous=synchronous)
        store.url = url
        return store

    # -- connection & transactions --------------------------------------------------
    def _error(self, action: str, exc: sqlite3.Error) -> StoreError:
        msg = str(exc)
        if "no such table" in msg:
            hint = "create the tables with store.setup() (open_store() does it for you)"
        elif "locked" in msg or "busy" in msg:
            hint = (
                f"another connection held the write lock for more than {self.timeout}s; "
                "retry, or open the store with a larger timeout"
            )
        elif "unable to open" in msg or "readonly" in msg:
            hint = "check that the directory exists and is writable"
        else:
            hint = "check the database file (is it an SQLite file written by hitl-langgraph?)"
        err = StoreError(f"SQLite store {self.path!r}: could not {action}: {msg}; {hint}")
        err.__cause__ = exc
        return err

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self.path != ":memory:" and not self.path.startswith("file:"):
            parent = Path(self.path).parent
            if not parent.is_dir():
                raise StoreError(
                    f"SQLite store {self.path!r}: directory {str(parent)!r} does not exist; "
                    "create it or use another path"
                )
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.create_function("hitl_fnmatch", 2, fnmatch.fnmatchcase, deterministic=True)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        except sqlite3.Error as exc:
            raise self._error("open the database", exc) from exc
        self._conn, self._pid = conn, os.getpid()
        return conn

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: holds SQLite's write lock until commit."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(action, exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error(action, exc) from exc
                raise

    def _read(self, action: str, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error(action, exc) from exc

    # -- lifecycle --------------------------------------------------------------------
    def setup(self) -> None:
        """Create or upgrade the ``hitl_`` tables. Idempotent and safe to run concurrently."""
        with self._write("set up the tables") as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS hitl_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM hitl_migrations").fetchone()
            current = int(row[0])
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"SQLite store {self.path!r} has schema version {current}, newer than this "
                    f"hitl-langgraph knows ({len(MIGRATIONS)}); upgrade hitl-langgraph"
                )
            for version in range(current + 1, len(MIGRATIONS) + 1):
                for statement in _statements(MIGRATIONS[version - 1]):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO hitl_migrations (version, applied_at) "
                    "VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    (version,),
                )
            for statement in INDEXES:
                conn.execute(statement)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- requests ---------------------------------------------------------------------
    def put_request(
        self, record: ApprovalRecord, *, audit: AuditEvent | None = None
    ) -> tuple[ApprovalRecord, bool]:
        values = [_encode(name, getattr(record, name)) for name in REQUEST_FIELDS]
        with self._write("store the request") as conn:
            if conn.execute(_INSERT, values).rowcount == 1:
                if audit is not None:
                    self._append(conn, audit)
                return record, True
            row = conn.execute(
                "SELECT * FROM hitl_requests WHERE request_id = ?", (record.request_id,)
            ).fetchone()
        return _record(row), False

    def get_request(self, request_id: str) -> ApprovalRecord | None:
        rows = self._read(
            "read the request", "SELECT * FROM hitl_requests WHERE request_id = ?", (request_id,)
        )
        return _record(rows[0]) if rows else None

    def list_requests(
        self,
        filter: RequestFilter | None = None,
        *,
        limit: int = 100,
        after: tuple[datetime, str] | None = None,
    ) -> list[ApprovalRecord]:
        where, params = _where(filter or RequestFilter(), after)
        sql = f"SELECT * FROM hitl_requests{where} ORDER BY created_at, request_id LIMIT ?"
        return [_record(r) for r in self._read("list requests", sql, [*params, limit])]

    def count_requests(self, filter: RequestFilter | None = None) -> int:
        where, params = _where(filter or RequestFilter(), None)
        rows = self._read("count requests", f"SELECT COUNT(*) FROM hitl_requests{where}", params)
        return int(rows[0][0])

    def update_request(
        self,
        request_id: str,
        *,
        expected_status: str | Sequence[str] | None = None,
        audit: AuditEvent | None = None,
        **changes: Any,
    ) -> ApprovalRecord:
        check_changes(changes)
        expected = expected_statuses(expected_status)
        encoded = {name: _encode(name, value) for name, value in changes.items()}
        with self._write("update the request") as conn:
            row = conn.execute(
                "SELECT * FROM hitl_requests WHERE request_id = ?", (request_id,)
            ).fetchone()
            if row is None:
                raise RequestNotFound(request_id)
            if expected is not None and row["status"] not in expected:
                raise already_decided(request_id, row["status"], row["decided_by"])
            if encoded:
                conn.execute(
                    update_sql("hitl_requests", list(encoded), "request_id", "?"),
                    [*encoded.values(), request_id],
                )
            if audit is not None:
                self._append(conn, audit)
        return replace(_record(row), **changes)

    # -- execution journal ------------------------------------------------------------
    def claim_execution(self, request_id: str, *, worker: str, at: datetime) -> bool:
        with self._write("claim the execution") as conn:
            cur = conn.execute(
                "INSERT INTO hitl_executions (request_id, state, worker, started_at) "
                "VALUES (?, 'running', ?, ?) ON CONFLICT (request_id) DO NOTHING",
                (request_id, worker, _ts(at, "at")),
            )
            return cur.rowcount == 1

    def start_execution(self, request_id: str, *, worker: str, at: datetime) -> bool:
        with self._write("mark the execution started") as conn:
            cur = conn.execute(
                "UPDATE hitl_executions SET state = 'started', started_at = ? "
                "WHERE request_id = ? AND state = 'running' AND worker = ?",
                (_ts(at, "at"), request_id, worker),
            )
            return cur.rowcount == 1

    def finish_execution(
        self,
        request_id: str,
        *,
        state: str,
        at: datetime,
        result_type: str | None = None,
        result: bytes | None = None,
        error: str | None = None,
        audit: AuditEvent | None = None,
        expected_state: str | Sequence[str] | None = None,
    ) -> bool:
        expected = expected_statuses(expected_state)
        with self._write("record the execution result") as conn:
            sql = (
                "UPDATE hitl_executions SET state = ?, finished_at = ?, result_type = ?, "
                "result = ?, error = ? WHERE request_id = ?"
            )
            params: list[Any] = [state, _ts(at, "at"), result_type, result, error, request_id]
            if expected is not None:
                sql += " AND state IN (" + ", ".join(["?"] * len(expected)) + ")"
                params.extend(expected)
            cur = conn.execute(sql, params)
            if cur.rowcount == 0:
                cur = conn.execute(
                    "SELECT 1 FROM hitl_executions WHERE request_id = ?", (request_id,)
                )
                if cur.fetchone() is None:
                    raise RequestNotFound(request_id)
                return False
            if audit is not None:
                self._append(conn, audit)
            return True

    def get_execution(self, request_id: str) -> ExecutionRecord | None:
        rows = self._read(
            "read the execution",
            "SELECT * FROM hitl_executions WHERE request_id = ?",
            (request_id,),
        )
        if not rows:
            return None
        return text_row(ExecutionRecord, EXEC_FIELDS, rows[0], time_fields=EXEC_TIME_FIELDS)

    def release_execution(self, request_id: str, *, worker: str | None = None) -> bool:
        with self._write("release the execution claim") as conn:
            if worker is None:
                cur = conn.execute(
                    "DELETE FROM hitl_executions WHERE request_id = ? AND state = 'running'",
                    (request_id,),
                )
            else:
                cur = conn.execute(
                    "DELETE FROM hitl_executions "
                    "WHERE request_id = ? AND state = 'running' AND worker = ?",
                    (request_id, worker),
                )
            return cur.rowcount > 0

    def reopen_execution(
        self, request_id: str, *, expected_state: Sequence[str], audit: AuditEvent | None = None
    ) -> bool:
        states = list(expected_state)
        if not states:
            return False
        with self._write("reopen the execution") as conn:
            cur = conn.execute(
                "DELETE FROM hitl_executions WHERE request_id = ? AND state IN ("
                + ", ".join(["?"] * len(states))
                + ")",
                [request_id, *states],
            )
            if cur.rowcount == 0:
                return False
            if audit is not None:
                self._append(conn, audit)
            return True

    # -- audit ------------------------------------------------------------------------
    def _append(self, conn: sqlite3.Connection, event: AuditEvent) -> AuditEvent:
        """Append inside the caller's IMMEDIATE transaction (which holds the write lock):
        the next seq from the counter (never reused, even after rows are deleted), the
        stream's head, the row, the new head."""
        stream = stream_of(event)
        head = conn.execute(
            "SELECT n, hash FROM hitl_audit_heads WHERE stream = ?", (stream,)
        ).fetchone()
        n, prev = (0, "") if head is None else (int(head["n"]), str(head["hash"]))
        seq = int(
            conn.execute(
                "UPDATE hitl_audit_counter SET last_seq = last_seq + 1 WHERE id = 1 "
                "RETURNING last_seq"
            ).fetchone()[0]
        )
        final = stage_audit(
            event, seq=seq, prev_hash=prev, stream=stream, stream_seq=n + 1, key=self._current_key()
        )
        conn.execute(_AUDIT_INSERT, audit_row(final, _ts(final.at, "at")))
        conn.execute(
            "INSERT INTO hitl_audit_heads (stream, n, hash, seq) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (stream) DO UPDATE SET n = excluded.n, hash = excluded.hash, "
            "seq = excluded.seq",
            (stream, n + 1, final.hash, seq),
        )
        return final

    def audit_heads(self) -> AuditHeads:
        rows = self._read(
            "read the audit heads", "SELECT stream, n, hash, seq FROM hitl_audit_heads"
        )
        last = self._read("read the audit counter", "SELECT last_seq FROM hitl_audit_counter")
        return AuditHeads(
            {
                int(r["stream"]): StreamHead(
                    int(r["stream"]), int(r["n"]), r["hash"], int(r["seq"])
                )
                for r in rows
            },
            int(last[0][0]) if last else 0,
        )

    def append_audit(self, event: AuditEvent) -> AuditEvent:
        with self._write("append to the audit trail") as conn:
            return self._append(conn, event)

    def list_audit(
        self, *, after_seq: int = 0, limit: int | None = None, request_id: str | None = None
    ) -> list[AuditEvent]:
        sql, params = audit_query(after_seq, limit, request_id, "?")
        return [_audit(r) for r in self._read("read the audit trail", sql, params)]
