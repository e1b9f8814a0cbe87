"""The DuckDB file: schema migrations and every read and write.

DuckDB lets one process write a file, and the service is that process. Inside it, all
database work runs on one dedicated thread (a single-worker executor), in submission
order: handlers never block the event loop, writes never race, and a read always sees
the writes submitted before it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger("ib_extension.service.store")

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE sessions (
        id VARCHAR PRIMARY KEY,
        candidate_name VARCHAR NOT NULL,
        candidate_email VARCHAR,
        challenge JSON NOT NULL,
        model VARCHAR NOT NULL,
        assist_policy VARCHAR NOT NULL,
        time_limit_seconds DOUBLE NOT NULL,
        token_budget BIGINT NOT NULL,
        tokens_prompt BIGINT NOT NULL,
        tokens_completion BIGINT NOT NULL,
        token_hash VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        locked BOOLEAN NOT NULL,
        created_at DOUBLE NOT NULL,
        started_at DOUBLE,
        ended_at DOUBLE,
        paused_at DOUBLE,
        paused_seconds DOUBLE NOT NULL,
        message_count INTEGER NOT NULL,
        last_activity_at DOUBLE,
        end_reason VARCHAR,
        submitted_at DOUBLE,
        warnings JSON NOT NULL,
        warned JSON NOT NULL,
        flags JSON NOT NULL,
        grade JSON
    );
    CREATE TABLE messages (
        id VARCHAR PRIMARY KEY,
        seq BIGINT NOT NULL,
        session_id VARCHAR NOT NULL,
        role VARCHAR NOT NULL,
        content VARCHAR NOT NULL,
        model VARCHAR,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        latency_ms INTEGER,
        status VARCHAR NOT NULL,
        created_at DOUBLE NOT NULL,
        finished_at DOUBLE
    );
    CREATE INDEX messages_by_session ON messages (session_id, seq);
    CREATE TABLE events (
        id BIGINT PRIMARY KEY,
        session_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        actor VARCHAR NOT NULL,
        payload JSON NOT NULL,
        "at" DOUBLE NOT NULL
    );
    CREATE INDEX events_by_session ON events (session_id, "at");
    CREATE INDEX events_by_type ON events (type);
    CREATE TABLE challenges (
        id VARCHAR PRIMARY KEY,
        source VARCHAR NOT NULL,
        created_at DOUBLE NOT NULL
    );
    """,
    # 2: candidates' workspaces on JupyterHub (service/workspaces.py); codes only as hashes
    """
    CREATE TABLE workspaces (
        session_id VARCHAR PRIMARY KEY,
        hub_user VARCHAR NOT NULL,
        link_hash VARCHAR,
        browser_hash VARCHAR,
        issued_at DOUBLE NOT NULL,
        claimed_at DOUBLE,
        closed_at DOUBLE,
        removed_at DOUBLE
    );
    CREATE INDEX workspaces_by_link ON workspaces (link_hash);
    """,
]

SESSION_COLUMNS = [
    "id", "candidate_name", "candidate_email", "challenge", "model", "assist_policy",
    "time_limit_seconds", "token_budget", "tokens_prompt", "tokens_completion", "token_hash",
    "status", "locked", "created_at", "started_at", "ended_at", "paused_at", "paused_seconds",
    "message_count", "last_activity_at", "end_reason", "submitted_at", "warnings", "warned",
    "flags", "grade",
]
MESSAGE_COLUMNS = [
    "id", "seq", "session_id", "role", "content", "model", "prompt_tokens", "completion_tokens",
    "latency_ms", "status", "created_at", "finished_at",
]
EVENT_COLUMNS = ["id", "session_id", "type", "actor", "payload", "at"]
WORKSPACE_COLUMNS = ["session_id", "hub_user", "link_hash", "browser_hash", "issued_at",
                     "claimed_at", "closed_at", "removed_at"]
JSON_COLUMNS = {"challenge", "warnings", "warned", "flags", "payload", "grade"}


class Encoded(str):
    """A JSON column's value already encoded (the caller measured it), stored as is."""


def _cols(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _decode(columns: list[str], row: tuple) -> dict[str, Any]:
    d = dict(zip(columns, row, strict=True))
    for c in JSON_COLUMNS.intersection(d):
        d[c] = json.loads(d[c]) if d[c] is not None else None
    return d


def _encode(columns: list[str], d: dict[str, Any]) -> list[Any]:
    return [json.dumps(d[c]) if c in JSON_COLUMNS and not isinstance(d[c], Encoded) else d[c]
            for c in columns]


class Store:
    def __init__(self, path: Path, memory_mb: int = 256):
        self.path = Path(path)
        self.memory_mb = memory_mb
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ib-duckdb")
        self._con: duckdb.DuckDBPyConnection | None = None

    # ---- plumbing ----------------------------------------------------------------
    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor.submit(self._open).result()

    def _open(self) -> None:
        # DuckDB would cache up to 80 % of the machine's memory; past this it spills to disk.
        self._con = duckdb.connect(str(self.path), config={"memory_limit": f"{self.memory_mb}MB"})
        self._migrate()

    def close(self) -> None:
        """Finish every queued write, then checkpoint and close the file."""
        if self._con is None:
            self._executor.shutdown(wait=True)
            return

        def _close() -> None:
            assert self._con is not None
            self._con.execute("CHECKPOINT")
            self._con.close()
            self._con = None

        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Queue work on the database thread; failures are logged, never lost silently."""
        fut = self._executor.submit(fn, *args)
        fut.add_done_callback(_log_failure)
        return fut

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.wrap_future(self.submit(fn, *args))

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        assert self._con is not None, "store is not open"
        return self._con

    def _migrate(self) -> None:
        con = self.con
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        current = row[0] or 0
        for version, sql in enumerate(MIGRATIONS[current:], start=current + 1):
            con.execute("BEGIN")
            try:
                con.execute(sql)
                con.execute("INSERT INTO schema_version VALUES (?)", [version])
            except Exception:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            log.info("database migrated to schema version %d", version)

    def schema_version(self) -> int:
        return self.con.execute("SELECT max(version) FROM schema_version").fetchone()[0]

    # ---- sessions ----------------------------------------------------------------
    def _upsert(self, table: str, columns: list[str], row: dict[str, Any]) -> None:
        marks = ", ".join("?" for _ in columns)
        self.con.execute(f"INSERT OR REPLACE INTO {table} ({_cols(columns)}) VALUES ({marks})",
                         _encode(columns, row))

    def save_session(self, row: dict[str, Any]) -> None:
        self._upsert("sessions", SESSION_COLUMNS, row)

    def hand_ins(self) -> list[tuple[str, dict[str, Any]]]:
        """(session id, {at, by, path, code_cells}) of each final notebook handed in after
        an end (Service.hand_in), without the notebooks."""
        rows = self.con.execute(
            "SELECT session_id, \"at\", payload->>'by', payload->>'path', "
            "CAST(payload->>'code_cells' AS INTEGER) FROM events "
            "WHERE type = 'notebook.handed_in' ORDER BY id").fetchall()
        return [(sid, {"at": at, "by": by, "path": path, "code_cells": cells})
                for sid, at, by, path, cells in rows]

    def load_sessions(self) -> list[dict[str, Any]]:
        rows = self.con.execute(
            f"SELECT {_cols(SESSION_COLUMNS)} FROM sessions ORDER BY created_at"
        ).fetchall()
        return [_decode(SESSION_COLUMNS, r) for r in rows]

    # ---- messages ----------------------------------------------------------------
    def save_message(self, row: dict[str, Any]) -> None:
        self._upsert("messages", MESSAGE_COLUMNS, row)

    def messages(self, session_id: str) -> list[dict[str, Any]]:
        rows = self.con.execute(
            f"SELECT {_cols(MESSAGE_COLUMNS)} FROM messages WHERE session_id = ? "
            "ORDER BY seq",
            [session_id],
        ).fetchall()
        return [_decode(MESSAGE_COLUMNS, r) for r in rows]

    def streaming_messages(self) -> list[dict[str, Any]]:
        rows = self.con.execute(
            f"SELECT {_cols(MESSAGE_COLUMNS)} FROM messages WHERE status = 'streaming'"
        ).fetchall()
        return [_decode(MESSAGE_COLUMNS, r) for r in rows]

    def search_messages(self, text: str) -> set[str]:
        """Sessions whose conversation contains `text` (case-insensitive). A plain substring
        test, nothing to escape: `contains(lower(...))` scans a million messages in about
        half the time of ILIKE with an escaped pattern (benchmarks/scale.py)."""
        rows = self.con.execute(
            "SELECT DISTINCT session_id FROM messages WHERE contains(lower(content), lower(?))",
            [text],
        ).fetchall()
        return {r[0] for r in rows}

    # ---- events ------------------------------------------------------------------
    def save_event(self, row: dict[str, Any]) -> None:
        self.con.execute(
            f"INSERT INTO events ({_cols(EVENT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)",
            _encode(EVENT_COLUMNS, row),
        )

    def events(self, session_id: str, types: list[str] | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {_cols(EVENT_COLUMNS)} FROM events WHERE session_id = ?"
        params: list[Any] = [session_id]
        if types:
            sql += " AND (" + " OR ".join("type LIKE ?" for _ in types) + ")"
            params += [t.replace("*", "%") for t in types]
        rows = self.con.execute(sql + " ORDER BY id", params).fetchall()
        return [_decode(EVENT_COLUMNS, r) for r in rows]

    def event(self, session_id: str, event_id: int) -> dict[str, Any] | None:
        row = self.con.execute(
            f"SELECT {_cols(EVENT_COLUMNS)} FROM events WHERE session_id = ? AND id = ?",
            [session_id, event_id]).fetchone()
        return _decode(EVENT_COLUMNS, row) if row else None

    def activity_usage(self) -> list[tuple[str, int, int, int]]:
        """(session id, activity events, snapshots, payload bytes) of every session."""
        return self.con.execute(
            "SELECT session_id, count(*), count(*) FILTER (WHERE type = 'activity.snapshot'), "
            "coalesce(sum(strlen(payload::VARCHAR)), 0) FROM events "
            "WHERE type LIKE 'activity.%' GROUP BY session_id").fetchall()

    def max_event_id(self) -> int:
        return self.con.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]

    def max_message_seq(self) -> int:
        return self.con.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()[0]

    # ---- candidates' workspaces (JupyterHub) --------------------------------------
    def save_workspace(self, row: dict[str, Any]) -> None:
        self._upsert("workspaces", WORKSPACE_COLUMNS, row)

    def load_workspaces(self) -> list[dict[str, Any]]:
        rows = self.con.execute(f"SELECT {_cols(WORKSPACE_COLUMNS)} FROM workspaces").fetchall()
        return [_decode(WORKSPACE_COLUMNS, r) for r in rows]

    # ---- interviewer-made challenges ---------------------------------------------
    def save_challenge(self, challenge_id: str, source: str, at: float) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO challenges VALUES (?, ?, ?)", [challenge_id, source, at]
        )

    def challenges(self) -> list[tuple[str, str]]:
        return self.con.execute("SELECT id, source FROM challenges ORDER BY created_at").fetchall()


def _log_failure(fut: Future) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("database operation failed", exc_info=fut.exception())
