"""PostgreSQL store (``postgresql://user@host:5432/db``): psycopg 3 with a connection pool.

Tables are prefixed ``hitl_`` and created in the connection's current schema (set
``options=-csearch_path=<schema>`` in the URL to use another one). Compare-and-set is a
conditional ``UPDATE``, claims are ``INSERT ... ON CONFLICT DO NOTHING``, and audit appends
lock only their stream's head row (per-stream chains, see ``AuditEvent``), in the same
transaction as the row change they describe.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..errors import ConfigurationError, RequestNotFound, StoreError, missing_dependency
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
    glob_regex,
    insert_sql,
    native_row,
    stage_audit,
    stream_of,
    utc,
    where_sql,
)
from .base import ApprovalStore, RequestFilter
from .chain import AuditHeads, StreamHead
from .records import ApprovalRecord, AuditEvent, ExecutionRecord

try:
    import psycopg
    from psycopg.rows import dict_row
    from psycopg.types.json import Jsonb
    from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise missing_dependency("psycopg", "postgres", exc) from exc

from ._review_postgres import PostgresReviewMixin

__all__ = ["INDEXES", "MIGRATIONS", "PostgresStore"]

_SETUP_LOCK = 0x68_69_74_6C_00_01  # "hitl" + 1: serialises concurrent setup() calls

MIGRATIONS: list[str] = [
    # version 1: requests, execution journal, audit trail. request_id uses the "C"
    # collation so ORDER BY / keyset pagination follow code-point order in every locale.
    # audit data is `json` (kept verbatim) so hashes recompute exactly after a round trip.
    """
    CREATE TABLE hitl_requests (
        request_id text COLLATE "C" PRIMARY KEY, thread_id text NOT NULL,
        node text NOT NULL, tool text NOT NULL, args jsonb NOT NULL, digest text NOT NULL,
        score double precision NOT NULL, route text NOT NULL, reasons jsonb NOT NULL,
        status text NOT NULL, created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL, checkpoint_ns text NOT NULL, tool_call_id text,
        kind text NOT NULL, interrupt_id text, approver_roles jsonb NOT NULL,
        allowed_decisions jsonb NOT NULL, quorum integer NOT NULL, approvals jsonb NOT NULL,
        policy_version text NOT NULL, requester text, expires_at timestamptz,
        on_expiry text NOT NULL, parent_request_id text, decision jsonb, decided_by text,
        decided_at timestamptz, metadata jsonb NOT NULL
    );
    CREATE INDEX hitl_requests_status ON hitl_requests (status, created_at, request_id);
    CREATE INDEX hitl_requests_thread ON hitl_requests (thread_id, created_at, request_id);
    CREATE INDEX hitl_requests_expiry ON hitl_requests (expires_at)
        WHERE expires_at IS NOT NULL;
    CREATE TABLE hitl_executions (
        request_id text PRIMARY KEY,
        state text NOT NULL,
        worker text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        result_type text,
        result bytea,
        error text
    );
    CREATE TABLE hitl_audit (
        seq bigint PRIMARY KEY,
        event text NOT NULL,
        at timestamptz NOT NULL,
        request_id text,
        thread_id text,
        actor text,
        data json NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL
    );
    CREATE INDEX hitl_audit_request ON hitl_audit (request_id, seq);
    """,
    # version 2: asynchronous review - sampling decisions, collected verdicts, and the
    # outbox of annotations to mirror into Phoenix
    """
    CREATE TABLE hitl_review_samples (
        request_id text COLLATE "C" PRIMARY KEY, project text NOT NULL,
        sampled boolean NOT NULL, probability double precision NOT NULL,
        draw double precision NOT NULL, score double precision NOT NULL,
        reason text NOT NULL, decided_at timestamptz NOT NULL, due_at timestamptz NOT NULL,
        priority integer NOT NULL, tool text NOT NULL, thread_id text, trace_id text,
        span_id text, policy_version text NOT NULL, reviewed_at timestamptz,
        reviewed_by text, metadata jsonb NOT NULL
    );
    CREATE INDEX hitl_review_samples_queue
        ON hitl_review_samples (project, sampled, due_at, request_id);
    CREATE INDEX hitl_review_samples_budget
        ON hitl_review_samples (project, sampled, decided_at);
    CREATE INDEX hitl_review_samples_span ON hitl_review_samples (span_id);
    CREATE TABLE hitl_reviews (
        review_id text COLLATE "C" PRIMARY KEY, project text NOT NULL,
        span_id text NOT NULL, name text NOT NULL, identifier text NOT NULL,
        annotator_kind text NOT NULL, source text NOT NULL,
        created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
        collected_at timestamptz NOT NULL, label text, score double precision,
        explanation text, reviewer text, request_id text, trace_id text, phoenix_id text,
        metadata jsonb NOT NULL
    );
    CREATE INDEX hitl_reviews_collected ON hitl_reviews (collected_at, review_id);
    CREATE INDEX hitl_reviews_span ON hitl_reviews (project, span_id);
    CREATE INDEX hitl_reviews_request ON hitl_reviews (request_id);
    CREATE TABLE hitl_outbox (
        entry_id text COLLATE "C" PRIMARY KEY, project text NOT NULL,
        span_id text NOT NULL, name text NOT NULL, identifier text NOT NULL,
        payload jsonb NOT NULL, created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL, status text NOT NULL, revision integer NOT NULL,
        attempts integer NOT NULL, next_attempt_at timestamptz, last_error text,
        mirrored_at timestamptz, phoenix_id text, request_id text
    );
    CREATE INDEX hitl_outbox_status ON hitl_outbox (status, created_at, entry_id);
    """,
    # version 3: per-stream keyed audit chains. Appends lock only their stream's head row
    # (no global lock, no SELECT ... ORDER BY seq DESC); seq comes from a sequence and is
    # never reused. Rows written before are kept as the legacy stream -1.
    """
    ALTER TABLE hitl_audit ADD COLUMN stream integer, ADD COLUMN stream_seq bigint,
        ADD COLUMN mac text, ADD COLUMN key_id text;
    UPDATE hitl_audit SET stream = -1, stream_seq = seq;
    CREATE TABLE hitl_audit_heads (
        stream integer PRIMARY KEY, n bigint NOT NULL, hash text NOT NULL, seq bigint NOT NULL
    );
    INSERT INTO hitl_audit_heads (stream, n, hash, seq)
        SELECT -1, seq, hash, seq FROM hitl_audit ORDER BY seq DESC LIMIT 1;
    CREATE SEQUENCE hitl_audit_seq;
    SELECT setval('hitl_audit_seq', COALESCE((SELECT MAX(seq) FROM hitl_audit), 0) + 1, false);
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

INDEXES: list[tuple[str, str]] = [
    # keyset paging over every request (iter_requests / reconcile)
    (
        "hitl_requests_created",
        "CREATE INDEX IF NOT EXISTS hitl_requests_created "
        "ON hitl_requests (created_at, request_id)",
    ),
    # pending() / count(): a partial index holds only the pending rows, so counting
    # them is an index-only scan of that set rather than of every request ever made
    (
        "hitl_requests_pending",
        "CREATE INDEX IF NOT EXISTS hitl_requests_pending "
        "ON hitl_requests (created_at, request_id) WHERE status = 'pending'",
    ),
]
"""Index-only schema additions ``(name, statement)``, created on ``setup()`` when missing,
after the migrations (under the setup lock): idempotent for new and existing databases."""

_INSERT = insert_sql("hitl_requests", REQUEST_FIELDS, "request_id", "%s") + " RETURNING request_id"
_HEAD_LOCK = "SELECT n, hash FROM hitl_audit_heads WHERE stream = %s FOR UPDATE"
_AUDIT_APPEND = (
    f"WITH ins AS (INSERT INTO hitl_audit ({AUDIT_COLUMNS}) "
    "VALUES (nextval('hitl_audit_seq'), %s, %s, %s, %s, %s, %s::json, %s, %s, %s, %s, %s, %s) "
    "RETURNING seq) "
    "UPDATE hitl_audit_heads SET n = %s, hash = %s, seq = (SELECT seq FROM ins) "
    "WHERE stream = %s RETURNING seq"
)


def _redact(conninfo: str) -> str:
    """The conninfo without its password, for error messages."""
    out = re.sub(r"(://[^:/@?]*:)[^@/?]*@", r"\1***@", conninfo)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", out)


def _encode(name: str, value: Any) -> Any:
    if name in JSON_FIELDS:
        return None if value is None and name == "decision" else Jsonb(value, dumps=dumps)
    if name in TIME_FIELDS:
        return None if value is None else utc(value, name)
    return value


def _record(row: dict[str, Any]) -> ApprovalRecord:
    return native_row(ApprovalRecord, REQUEST_FIELDS, row, time_fields=TIME_FIELDS)


def _audit(row: dict[str, Any]) -> AuditEvent:
    return native_row(AuditEvent, AUDIT_FIELDS, row, time_fields={"at"})


def _where(f: RequestFilter, after: tuple[datetime, str] | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if f.status is not None:
        # one status as "=" so the planner walks the (status, created_at, request_id) index
        clauses.append("status = %s" if len(f.status) == 1 else "status = ANY(%s)")
        params.append(f.status[0] if len(f.status) == 1 else list(f.status))
    if f.thread_id is not None:
        clauses.append("thread_id = %s")
        params.append(f.thread_id)
    if f.tool is not None:
        regex = glob_regex(f.tool)
        if regex is None:
            clauses.append("FALSE")
        else:
            clauses.append("tool ~ %s")
            params.append(regex)
    if f.route is not None:
        clauses.append("route = %s")
        params.append(f.route)
    if f.min_score is not None:
        clauses.append("score >= %s")
        params.append(f.min_score)
    if f.role is not None:
        clauses.append("(approver_roles = '[]'::jsonb OR approver_roles @> %s)")
        params.append(Jsonb([f.role]))
    if f.expires_before is not None:
        clauses.append("expires_at < %s")
        params.append(utc(f.expires_before, "expires_before"))
    if after is not None:
        clauses.append("(created_at, request_id) > (%s, %s)")
        params.extend([utc(after[0], "after"), after[1]])
    return where_sql(clauses), params


class PostgresStore(PostgresReviewMixin, ApprovalStore):
    """Approval store in PostgreSQL; safe across threads, processes and hosts."""

    def __init__(self, conninfo: str, *, pool_size: int = 4, connect_timeout: float = 10.0) -> None:
        if pool_size < 1:
            raise ConfigurationError(f"pool_size must be at least 1, got {pool_size}")
        self.conninfo = conninfo
        self.url = conninfo
        self._display = _redact(conninfo)
        try:  # fail fast, with libpq's own reason, before the pool starts retrying
            psycopg.connect(conninfo, connect_timeout=max(1, int(connect_timeout))).close()
        except psycopg.Error as exc:
            raise StoreError(
                f"could not connect to PostgreSQL at {self._display}: {exc}; check the URL, "
                "that the server is running and accepts this user"
            ) from exc
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            timeout=connect_timeout,
            open=False,
            configure=self._configure,
            name="hitl-langgraph",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except Exception as exc:
            self._pool.close()
            raise StoreError(
                f"could not connect to PostgreSQL at {self._display}: {exc}; check the URL, "
                "that the server is running and accepts this user"
            ) from exc

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """Any libpq URI (``postgresql://`` or ``postgres://``), passed to psycopg as is."""
        if not url.lower().startswith(("postgresql://", "postgres://")):
            raise ConfigurationError(
                f"Postgres store URL {url!r} must start with postgresql:// "
                "(e.g. 'postgresql://user@host:5432/db')"
            )
        return cls(url)

    def __repr__(self) -> str:
        return f"PostgresStore({self._display!r})"

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.commit()

    @contextmanager
    def _tx(self, action: str) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        try:
            with (
                self._pool.connection() as conn,
                conn.transaction(),
                conn.cursor(row_factory=dict_row) as cur,
            ):
                yield cur
        except psycopg.Error as exc:
            if isinstance(exc, PoolClosed):
                hint = "the store was closed; open a new one with open_store()"
            elif isinstance(exc, PoolTimeout):
                hint = "no pooled connection became free in time; raise pool_size"
            elif isinstance(exc, psycopg.errors.UndefinedTable):
                hint = "create the tables with store.setup() (open_store() does it for you)"
            elif isinstance(exc, psycopg.OperationalError):
                hint = "check that the server is reachable"
            else:
                hint = "check the database (are these tables written by hitl-langgraph?)"
            raise StoreError(
                f"PostgreSQL store {self._display}: could not {action}: {exc}; {hint}"
            ) from exc

    # -- lifecycle --------------------------------------------------------------------
    def setup(self) -> None:
        """Create or upgrade the ``hitl_`` tables. Idempotent and safe to run concurrently."""
        with self._tx("set up the tables") as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS hitl_migrations "
                "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT COALESCE(MAX(version), 0) AS v FROM hitl_migrations")
            row = cur.fetchone()
            current = int(row["v"]) if row else 0
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"PostgreSQL store {self._display} has schema version {current}, newer than "
                    f"this hitl-langgraph knows ({len(MIGRATIONS)}); upgrade hitl-langgraph"
                )
            for version in range(current + 1, len(MIGRATIONS) + 1):
                cur.execute(MIGRATIONS[version - 1])
                cur.execute("INSERT INTO hitl_migrations (version) VALUES (%s)", (version,))
            for name, statement in INDEXES:
                # CREATE INDEX takes a SHARE lock on the table even when the index exists;
                # look first so that opening a store does not wait for (or block) writers
                cur.execute("SELECT to_regclass(%s) AS r", (name,))
                found = cur.fetchone()
                if found is None or found["r"] is None:
                    cur.execute(statement)

    def close(self) -> None:
        self._pool.close()

    # -- requests ---------------------------------------------------------------------
    def put_request(
        self, record: ApprovalRecord, *, audit: AuditEvent | None = None
    ) -> tuple[ApprovalRecord, bool]:
        values = [_encode(name, getattr(record, name)) for name in REQUEST_FIELDS]
        with self._tx("store the request") as cur:
            cur.execute(_INSERT, values)
            if cur.fetchone() is not None:
                if audit is not None:
                    self._append(cur, audit)
                return record, True
            cur.execute("SELECT * FROM hitl_requests WHERE request_id = %s", (record.request_id,))
            row = cur.fetchone()
        if row is None:  # pragma: no cover - the conflicting row cannot vanish in between
            raise StoreError(f"request {record.request_id!r} conflicted but cannot be read")
        return _record(row), False

    def get_request(self, request_id: str) -> ApprovalRecord | None:
        with self._tx("read the request") as cur:
            cur.execute("SELECT * FROM hitl_requests WHERE request_id = %s", (request_id,))
            row = cur.fetchone()
        return None if row is None else _record(row)

    def list_requests(
        self,
        filter: RequestFilter | None = None,
        *,
        limit: int = 100,
        after: tuple[datetime, str] | None = None,
    ) -> list[ApprovalRecord]:
        where, params = _where(filter or RequestFilter(), after)
        sql = f"SELECT * FROM hitl_requests{where} ORDER BY created_at, request_id LIMIT %s"
        with self._tx("list requests") as cur:
            cur.execute(sql, [*params, limit])
            return [_record(r) for r in cur.fetchall()]

    def count_requests(self, filter: RequestFilter | None = None) -> int:
        where, params = _where(filter or RequestFilter(), None)
        with self._tx("count requests") as cur:
            cur.execute(f"SELECT COUNT(*) AS n FROM hitl_requests{where}", params)
            row = cur.fetchone()
        return int(row["n"]) if row else 0

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
        # SET request_id = request_id keeps the statement valid when nothing changes
        sets = ", ".join([f"{name} = %s" for name in changes] or ["request_id = request_id"])
        sql = f"UPDATE hitl_requests SET {sets} WHERE request_id = %s"
        params = [_encode(name, value) for name, value in changes.items()] + [request_id]
        if expected is not None:
            sql += " AND status = ANY(%s)"
            params.append(expected)
        with self._tx("update the request") as cur:
            cur.execute(sql + " RETURNING *", params)
            row = cur.fetchone()
            if row is None:
                cur.execute(
                    "SELECT status, decided_by FROM hitl_requests WHERE request_id = %s",
                    (request_id,),
                )
                current = cur.fetchone()
                if current is None:
                    raise RequestNotFound(request_id)
                raise already_decided(request_id, current["status"], current["decided_by"])
            if audit is not None:
                self._append(cur, audit)
        return _record(row)

    # -- execution journal ------------------------------------------------------------
    def claim_execution(self, request_id: str, *, worker: str, at: datetime) -> bool:
        with self._tx("claim the execution") as cur:
            cur.execute(
                "INSERT INTO hitl_executions (request_id, state, worker, started_at) "
                "VALUES (%s, 'running', %s, %s) ON CONFLICT (request_id) DO NOTHING",
                (request_id, worker, utc(at, "at")),
            )
            return cur.rowcount == 1

    def start_execution(self, request_id: str, *, worker: str, at: datetime) -> bool:
        with self._tx("mark the execution started") as cur:
            cur.execute(
                "UPDATE hitl_executions SET state = 'started', started_at = %s "
                "WHERE request_id = %s AND state = 'running' AND worker = %s",
                (utc(at, "at"), request_id, worker),
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
        with self._tx("record the execution result") as cur:
            sql = (
                "UPDATE hitl_executions SET state = %s, finished_at = %s, result_type = %s, "
                "result = %s, error = %s WHERE request_id = %s"
            )
            params: list[Any] = [state, utc(at, "at"), result_type, result, error, request_id]
            if expected is not None:
                sql += " AND state IN (" + ", ".join(["%s"] * len(expected)) + ")"
                params.extend(expected)
            cur.execute(sql, params)
            if cur.rowcount == 0:
                cur.execute("SELECT 1 FROM hitl_executions WHERE request_id = %s", (request_id,))
                if cur.fetchone() is None:
                    raise RequestNotFound(request_id)
                return False
            if audit is not None:
                self._append(cur, audit)
            return True

    def get_execution(self, request_id: str) -> ExecutionRecord | None:
        with self._tx("read the execution") as cur:
            cur.execute("SELECT * FROM hitl_executions WHERE request_id = %s", (request_id,))
            r = cur.fetchone()
        if r is None:
            return None
        return native_row(ExecutionRecord, EXEC_FIELDS, r, time_fields=EXEC_TIME_FIELDS)

    def release_execution(self, request_id: str, *, worker: str | None = None) -> bool:
        with self._tx("release the execution claim") as cur:
            if worker is None:
                cur.execute(
                    "DELETE FROM hitl_executions WHERE request_id = %s AND state = 'running'",
                    (request_id,),
                )
            else:
                cur.execute(
                    "DELETE FROM hitl_executions "
                    "WHERE request_id = %s AND state = 'running' AND worker = %s",
                    (request_id, worker),
                )
            return cur.rowcount > 0

    def reopen_execution(
        self, request_id: str, *, expected_state: Sequence[str], audit: AuditEvent | None = None
    ) -> bool:
        states = list(expected_state)
        if not states:
            return False
        with self._tx("reopen the execution") as cur:
            cur.execute(
                "DELETE FROM hitl_executions WHERE request_id = %s AND state IN ("
                + ", ".join(["%s"] * len(states))
                + ")",
                [request_id, *states],
            )
            if cur.rowcount == 0:
                return False
            if audit is not None:
                self._append(cur, audit)
            return True

    # -- audit ------------------------------------------------------------------------
    def _append(self, cur: psycopg.Cursor[dict[str, Any]], event: AuditEvent) -> AuditEvent:
        """Append inside the caller's transaction. Only the stream's head row is locked
        (``FOR UPDATE``, until commit), so appenders on other streams never wait; the
        row, its seq (``nextval`` taken under that lock, so a stream's seqs rise with its
        positions) and the new head go in one statement."""
        stream = stream_of(event)
        cur.execute(_HEAD_LOCK, (stream,))
        head = cur.fetchone()
        if head is None:  # the stream's first row: create its head, then lock it
            cur.execute(
                "INSERT INTO hitl_audit_heads (stream, n, hash, seq) VALUES (%s, 0, '', 0) "
                "ON CONFLICT (stream) DO NOTHING",
                (stream,),
            )
            cur.execute(_HEAD_LOCK, (stream,))
            head = cur.fetchone()
        if head is None:  # pragma: no cover - the head was just inserted
            raise StoreError(f"audit stream {stream} has no head row")
        n, prev = int(head["n"]), str(head["hash"])
        final = stage_audit(
            event,
            seq=None,
            prev_hash=prev,
            stream=stream,
            stream_seq=n + 1,
            key=self._current_key(),
        )
        cur.execute(_AUDIT_APPEND, [*audit_row(final, final.at)[1:], n + 1, final.hash, stream])
        row = cur.fetchone()
        return replace(final, seq=None if row is None else int(row["seq"]))

    def audit_heads(self) -> AuditHeads:
        with self._tx("read the audit heads") as cur:
            cur.execute("SELECT stream, n, hash, seq FROM hitl_audit_heads")
            rows = cur.fetchall()
            cur.execute("SELECT last_value, is_called FROM hitl_audit_seq")
            last = cur.fetchone()
        last_seq = 0 if last is None else int(last["last_value"]) - (0 if last["is_called"] else 1)
        return AuditHeads(
            {
                int(r["stream"]): StreamHead(
                    int(r["stream"]), int(r["n"]), r["hash"], int(r["seq"])
                )
                for r in rows
                if int(r["n"]) > 0
            },
            last_seq,
        )

    def append_audit(self, event: AuditEvent) -> AuditEvent:
        with self._tx("append to the audit trail") as cur:
            return self._append(cur, event)

    def list_audit(
        self, *, after_seq: int = 0, limit: int | None = None, request_id: str | None = None
    ) -> list[AuditEvent]:
        sql, params = audit_query(after_seq, limit, request_id, "%s")
        with self._tx("read the audit trail") as cur:
            cur.execute(sql, params)
            return [_audit(r) for r in cur.fetchall()]
