"""The job store: one table of jobs behind one interface, in SQLite or PostgreSQL.

Every server process, the supervisor and each worker process open their own connections
(one per process and thread) and coordinate through the table only:

- ``accepted`` jobs without a ``claim`` are the queue; a supervisor claims some atomically
  (one ``UPDATE ... WHERE job_id IN (SELECT ... LIMIT n) RETURNING``; on PostgreSQL the
  sub-select adds ``FOR UPDATE SKIP LOCKED``, on SQLite the statement holds the write lock);
- every write of a worker is conditional on its claim token and the job's status, so a job
  that was dismissed, timed out or declared interrupted can never be overwritten by a late
  worker;
- timestamps are epoch seconds (REAL / double precision); rendering is the API's business.

The connection string chooses the backend: ``postgresql://...`` is PostgreSQL, anything
else a SQLite file path.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cut_processes.jobs.config import is_postgres_url

ACCEPTED = "accepted"
RUNNING = "running"
SUCCESSFUL = "successful"
FAILED = "failed"
DISMISSED = "dismissed"
STATUSES = (ACCEPTED, RUNNING, SUCCESSFUL, FAILED, DISMISSED)
FINAL = (SUCCESSFUL, FAILED, DISMISSED)
ACTIVE = (ACCEPTED, RUNNING)

TABLE = "cut_jobs"


def now() -> float:
    """The current time in epoch seconds, whole microseconds (what statusInfo shows)."""
    return round(time.time(), 6)


JSON_COLUMNS = ("request", "subscriber", "error")
# Everything but the two potentially large columns (request inputs, inline result).
LIGHT_COLUMNS = (
    "job_id", "process_id", "type", "status", "message", "progress",
    "created", "started", "finished", "updated",
    "subscriber", "timeout", "mimetype", "result_path", "result_size",
    "error", "callback_error", "node", "claim", "worker_pid", "heartbeat",
)  # fmt: skip
ALL_COLUMNS = (*LIGHT_COLUMNS, "request", "result")


def _schema(real: str, blob: str, bigint: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            job_id TEXT PRIMARY KEY,
            process_id TEXT NOT NULL,
            type TEXT NOT NULL DEFAULT 'process',
            status TEXT NOT NULL,
            message TEXT,
            progress INTEGER NOT NULL DEFAULT 0,
            created {real} NOT NULL,
            started {real},
            finished {real},
            updated {real},
            request TEXT,
            subscriber TEXT,
            timeout {real},
            mimetype TEXT,
            result {blob},
            result_path TEXT,
            result_size {bigint},
            error TEXT,
            callback_error TEXT,
            node TEXT,
            claim TEXT,
            worker_pid INTEGER,
            heartbeat {real}
        )""",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_status_created ON {TABLE} (status, created)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_created ON {TABLE} (created)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_finished ON {TABLE} (finished)",
    ]


@dataclass
class JobFilter:
    """Filters of the job list (OGC API - Processes ``job-list``); times in epoch seconds."""

    process_ids: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    created_from: float | None = None  # inclusive
    created_to: float | None = None  # exclusive
    min_duration: float | None = None
    max_duration: float | None = None
    limit: int = 10
    offset: int = 0


class JobStore(ABC):
    """What the manager, the supervisor and the workers need from a job store."""

    @abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot be reached."""

    @abstractmethod
    def add(self, job: dict[str, Any], max_queued: int | None = None) -> bool:
        """Insert a job; False (and nothing inserted) if ``max_queued`` jobs already wait."""

    @abstractmethod
    def get(self, job_id: str, with_result: bool = False) -> dict[str, Any] | None:
        """One job, or None. ``request`` and ``result`` only with ``with_result``."""

    @abstractmethod
    def update(
        self,
        job_id: str,
        fields: dict[str, Any],
        *,
        status_in: Iterable[str] | None = None,
        claim: str | None = None,
    ) -> bool:
        """Partial update; with ``status_in``/``claim`` only if the job still matches."""

    @abstractmethod
    def update_returning(
        self, job_id: str, fields: dict[str, Any], *, status_in: Iterable[str]
    ) -> dict[str, Any] | None:
        """Conditional update returning the updated job (light columns), or None."""

    @abstractmethod
    def list(self, flt: JobFilter, at: float | None = None) -> tuple[list[dict[str, Any]], int]:
        """Jobs matching the filter, newest first, and how many match in total.

        ``at`` is the time running jobs' durations are measured to (default: now).
        """

    @abstractmethod
    def delete(self, job_id: str) -> dict[str, Any] | None:
        """Remove a job; returns its ``job_id`` and ``result_path`` or None if unknown."""

    @abstractmethod
    def claim_next(self, node: str, claim: str, limit: int, now: float) -> list[dict[str, Any]]:
        """Atomically take up to ``limit`` unclaimed accepted jobs, oldest first."""

    @abstractmethod
    def heartbeat(self, job_ids: Sequence[str], now: float) -> None:
        """Mark the given jobs as still looked after."""

    @abstractmethod
    def statuses(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Current status of each of the given jobs that still exists."""

    @abstractmethod
    def interrupt(
        self, message: str, error: dict[str, Any], now: float,
        *, node: str | None = None, heartbeat_before: float | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Fail the running jobs of a node, or those with a heartbeat older than a time."""

    @abstractmethod
    def release(self, *, node: str | None = None, heartbeat_before: float | None = None) -> int:
        """Put claimed jobs that never started back into the queue."""

    @abstractmethod
    def purge_expired(self, finished_before: float) -> list[dict[str, Any]]:
        """Delete final jobs finished before the time; returns ``job_id``/``result_path``."""

    @abstractmethod
    def count_queued(self) -> int:
        """Number of accepted jobs (claimed or not) that have not started."""

    @abstractmethod
    def close(self) -> None:
        """Close this process's connections."""


class _ConnectionCache:
    """One connection per process and thread.

    A connection inherited over ``fork`` is never used nor closed by the child (closing an
    inherited SQLite or libpq connection can disturb the parent's); it is kept referenced.
    """

    def __init__(self, factory: Callable[[], Any], usable: Callable[[Any], bool]):
        self._factory = factory
        self._usable = usable
        self._local = threading.local()
        self._inherited: list[Any] = []
        self._mine: list[Any] = []
        self._lock = threading.Lock()

    def get(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid != os.getpid():
            self._inherited.append(conn)
            conn = None
        if conn is not None and not self._usable(conn):
            self._drop(conn)
            conn = None
        if conn is None:
            conn = self._factory()
            self._local.conn = conn
            self._local.pid = os.getpid()
            with self._lock:
                self._mine.append(conn)
        return conn

    def _drop(self, conn: Any) -> None:
        with self._lock:
            if conn in self._mine:
                self._mine.remove(conn)
        # A broken connection may fail to close; it is gone either way.
        with contextlib.suppress(Exception):
            conn.close()
        self._local.conn = None

    def discard(self) -> None:
        """Forget the current thread's connection (after an error left it unusable)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            self._drop(conn)

    def close_all(self) -> None:
        with self._lock:
            conns, self._mine = self._mine, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
        self._local = threading.local()


def _encode(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in fields.items():
        if key in JSON_COLUMNS and value is not None:
            value = json.dumps(value, separators=(",", ":"))
        out[key] = value
    return out


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in JSON_COLUMNS:
        value = row.get(key)
        if isinstance(value, str):
            row[key] = json.loads(value)
    if isinstance(row.get("result"), memoryview):
        row["result"] = bytes(row["result"])
    return row


class _SQLJobStore(JobStore):
    """The SQL shared by both backends; placeholders are written ``?``."""

    placeholder = "?"
    claim_lock = ""

    def __init__(self, schema_ready: bool = False) -> None:
        self._conns = _ConnectionCache(self._connect, self._usable)
        self._ready = schema_ready
        self._ready_lock = threading.Lock()

    # -- backend hooks --------------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> Any: ...

    @abstractmethod
    def _usable(self, conn: Any) -> bool: ...

    @abstractmethod
    def _create_schema(self, conn: Any) -> None: ...

    @abstractmethod
    def _run(self, conn: Any, sql: str, params: Sequence[Any]) -> tuple[list[dict], int]: ...

    @abstractmethod
    def _insert_limited(self, conn: Any, sql: str, params: Sequence[Any]) -> int: ...

    # -- plumbing -------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _conn(self) -> Any:
        conn = self._conns.get()
        if not self._ready:
            with self._ready_lock:
                if not self._ready:
                    self._create_schema(conn)
                    self._ready = True
        return conn

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[dict], int]:
        conn = self._conn()
        try:
            return self._run(conn, self._sql(sql), list(params))
        except Exception:
            # A failed statement may leave the connection in a bad state: start afresh.
            self._conns.discard()
            raise

    @staticmethod
    def _marks(values: Sequence[Any]) -> str:
        return ", ".join("?" for _ in values)

    # -- interface ------------------------------------------------------------------------
    def ping(self) -> None:
        self._execute(f"SELECT count(*) AS n FROM {TABLE} WHERE job_id = ?", ["-"])

    def add(self, job: dict[str, Any], max_queued: int | None = None) -> bool:
        values = _encode(job)
        columns = list(values)
        if max_queued is None:
            sql = f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({self._marks(columns)})"
            self._execute(sql, [values[c] for c in columns])
            return True
        sql = (
            f"INSERT INTO {TABLE} ({', '.join(columns)}) SELECT {self._marks(columns)} "
            f"WHERE (SELECT count(*) FROM {TABLE} WHERE status = 'accepted') < ?"
        )
        params = [*(values[c] for c in columns), max_queued]
        conn = self._conn()
        try:
            return self._insert_limited(conn, self._sql(sql), params) == 1
        except Exception:
            self._conns.discard()
            raise

    def get(self, job_id: str, with_result: bool = False) -> dict[str, Any] | None:
        columns = ALL_COLUMNS if with_result else LIGHT_COLUMNS
        rows, _ = self._execute(
            f"SELECT {', '.join(columns)} FROM {TABLE} WHERE job_id = ?", [job_id]
        )
        return _decode(rows[0]) if rows else None

    def _where_conditions(
        self, job_id: str, status_in: Iterable[str] | None, claim: str | None
    ) -> tuple[str, list[Any]]:
        where = ["job_id = ?"]
        params: list[Any] = [job_id]
        if status_in is not None:
            statuses = list(status_in)
            where.append(f"status IN ({self._marks(statuses)})")
            params.extend(statuses)
        if claim is not None:
            where.append("claim = ?")
            params.append(claim)
        return " AND ".join(where), params

    def update(
        self,
        job_id: str,
        fields: dict[str, Any],
        *,
        status_in: Iterable[str] | None = None,
        claim: str | None = None,
    ) -> bool:
        values = _encode(fields)
        where, where_params = self._where_conditions(job_id, status_in, claim)
        sets = ", ".join(f"{c} = ?" for c in values)
        _, count = self._execute(
            f"UPDATE {TABLE} SET {sets} WHERE {where}", [*values.values(), *where_params]
        )
        return count > 0

    def update_returning(
        self, job_id: str, fields: dict[str, Any], *, status_in: Iterable[str]
    ) -> dict[str, Any] | None:
        values = _encode(fields)
        where, where_params = self._where_conditions(job_id, status_in, None)
        sets = ", ".join(f"{c} = ?" for c in values)
        rows, _ = self._execute(
            f"UPDATE {TABLE} SET {sets} WHERE {where} RETURNING {', '.join(LIGHT_COLUMNS)}",
            [*values.values(), *where_params],
        )
        return _decode(rows[0]) if rows else None

    def list(self, flt: JobFilter, at: float | None = None) -> tuple[list[dict[str, Any]], int]:
        at = now() if at is None else at
        where: list[str] = []
        params: list[Any] = []
        for column, values in (
            ("process_id", flt.process_ids),
            ("status", flt.statuses),
            ("type", flt.types),
        ):
            if values:
                where.append(f"{column} IN ({self._marks(values)})")
                params.extend(values)
        if flt.created_from is not None:
            where.append("created >= ?")
            params.append(flt.created_from)
        if flt.created_to is not None:
            where.append("created < ?")
            params.append(flt.created_to)
        if flt.min_duration is not None or flt.max_duration is not None:
            where.append("started IS NOT NULL")
        if flt.min_duration is not None:
            where.append("COALESCE(finished, ?) - started >= ?")
            params.extend([at, flt.min_duration])
        if flt.max_duration is not None:
            where.append("COALESCE(finished, ?) - started <= ?")
            params.extend([at, flt.max_duration])
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows, _ = self._execute(f"SELECT count(*) AS n FROM {TABLE}{clause}", params)
        total = int(rows[0]["n"])
        rows, _ = self._execute(
            f"SELECT {', '.join(LIGHT_COLUMNS)} FROM {TABLE}{clause} "
            "ORDER BY created DESC, job_id DESC LIMIT ? OFFSET ?",
            [*params, flt.limit, flt.offset],
        )
        return [_decode(r) for r in rows], total

    def delete(self, job_id: str) -> dict[str, Any] | None:
        rows, _ = self._execute(
            f"DELETE FROM {TABLE} WHERE job_id = ? RETURNING job_id, result_path", [job_id]
        )
        return rows[0] if rows else None

    def claim_next(self, node: str, claim: str, limit: int, now: float) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        rows, _ = self._execute(
            f"UPDATE {TABLE} SET node = ?, claim = ?, heartbeat = ? WHERE job_id IN ("
            f"SELECT job_id FROM {TABLE} WHERE status = 'accepted' AND claim IS NULL "
            f"ORDER BY created LIMIT ?{self.claim_lock}) "
            f"RETURNING {', '.join(ALL_COLUMNS)}",
            [node, claim, now, limit],
        )
        return sorted((_decode(r) for r in rows), key=lambda r: r["created"])

    def heartbeat(self, job_ids: Sequence[str], now: float) -> None:
        if job_ids:
            self._execute(
                f"UPDATE {TABLE} SET heartbeat = ? WHERE job_id IN ({self._marks(job_ids)}) "
                "AND status IN ('accepted', 'running')",
                [now, *job_ids],
            )

    def statuses(self, job_ids: Sequence[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        rows, _ = self._execute(
            f"SELECT job_id, status FROM {TABLE} WHERE job_id IN ({self._marks(job_ids)})",
            list(job_ids),
        )
        return {r["job_id"]: r["status"] for r in rows}

    @staticmethod
    def _scope(node: str | None, heartbeat_before: float | None) -> tuple[str, list[Any]]:
        if (node is None) == (heartbeat_before is None):
            raise ValueError("give exactly one of node and heartbeat_before")
        if node is not None:
            return "node = ?", [node]
        return "heartbeat < ?", [heartbeat_before]

    def interrupt(
        self, message: str, error: dict[str, Any], now: float,
        *, node: str | None = None, heartbeat_before: float | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        scope, scope_params = self._scope(node, heartbeat_before)
        rows, _ = self._execute(
            f"UPDATE {TABLE} SET status = 'failed', message = ?, error = ?, finished = ?, "
            f"updated = ?, request = NULL WHERE status = 'running' AND {scope} "
            "RETURNING job_id, process_id, subscriber",
            [message, json.dumps(error), now, now, *scope_params],
        )
        return [_decode(r) for r in rows]

    def release(self, *, node: str | None = None, heartbeat_before: float | None = None) -> int:
        scope, scope_params = self._scope(node, heartbeat_before)
        _, count = self._execute(
            f"UPDATE {TABLE} SET node = NULL, claim = NULL, heartbeat = NULL, "
            f"worker_pid = NULL WHERE status = 'accepted' AND claim IS NOT NULL AND {scope}",
            scope_params,
        )
        return count

    def purge_expired(self, finished_before: float) -> list[dict[str, Any]]:
        rows, _ = self._execute(
            f"DELETE FROM {TABLE} WHERE status IN ('successful', 'failed', 'dismissed') "
            "AND finished < ? RETURNING job_id, result_path",
            [finished_before],
        )
        return rows

    def count_queued(self) -> int:
        rows, _ = self._execute(f"SELECT count(*) AS n FROM {TABLE} WHERE status = 'accepted'")
        return int(rows[0]["n"])

    def close(self) -> None:
        self._conns.close_all()


class SQLiteJobStore(_SQLJobStore):
    """A SQLite file in WAL mode, shared by the processes of one machine."""

    busy_timeout_ms = 30000

    def __init__(self, path: str | Path, schema_ready: bool = False):
        self.path = Path(path)
        super().__init__(schema_ready)

    def __repr__(self) -> str:
        return f"<SQLiteJobStore {self.path}>"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        # WAL is durable against process crashes with synchronous=NORMAL.
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _usable(self, conn: sqlite3.Connection) -> bool:
        return True

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _schema("REAL", "BLOB", "INTEGER"):
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _run(self, conn: sqlite3.Connection, sql: str, params: Sequence[Any]):
        cursor = conn.execute(sql, params)
        rows = [dict(r) for r in cursor.fetchall()] if cursor.description else []
        return rows, cursor.rowcount

    def _insert_limited(self, conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
        # One statement: SQLite holds the write lock from the count to the insert.
        return conn.execute(sql, params).rowcount


class PostgresJobStore(_SQLJobStore):
    """A PostgreSQL table shared by every node; the schema is created on first use."""

    placeholder = "%s"
    claim_lock = " FOR UPDATE SKIP LOCKED"
    # pg_advisory_xact_lock keys: schema creation, and the queue-limit check of inserts.
    SCHEMA_LOCK = 7_310_001
    QUEUE_LOCK = 7_310_002

    def __init__(self, url: str, schema_ready: bool = False):
        self.url = url
        super().__init__(schema_ready)

    def __repr__(self) -> str:
        return "<PostgresJobStore>"

    def _connect(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        return psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=10)

    def _usable(self, conn: Any) -> bool:
        return not (conn.closed or conn.broken)

    def _create_schema(self, conn: Any) -> None:
        # Several processes may start at once: serialise CREATE ... IF NOT EXISTS, which
        # is not race-free on its own in PostgreSQL.
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [self.SCHEMA_LOCK])
            for statement in _schema("DOUBLE PRECISION", "BYTEA", "BIGINT"):
                conn.execute(statement)

    def _run(self, conn: Any, sql: str, params: Sequence[Any]):
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else []
            return rows, cursor.rowcount

    def _insert_limited(self, conn: Any, sql: str, params: Sequence[Any]) -> int:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [self.QUEUE_LOCK])
            return conn.execute(sql, params).rowcount


def open_store(connection: str, schema_ready: bool = False) -> JobStore:
    """``postgresql://...`` opens PostgreSQL; anything else is a SQLite file path.

    The schema is created on first use unless ``schema_ready`` says it exists (worker
    processes, whose supervisor created it, skip that write).
    """
    if is_postgres_url(connection):
        return PostgresJobStore(connection, schema_ready)
    return SQLiteJobStore(connection.removeprefix("sqlite:///"), schema_ready)
