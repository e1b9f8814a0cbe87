"""The DuckDB file: schema migrations and every read and write.

DuckDB lets one process write a file, and the service is that process. Inside it, all
database work runs on one dedicated thread (a single-worker executor), in submission
order: handlers never block the event loop, writes never race, and a read always sees
the writes queued before it.

Writes are write-behind, because a DuckDB commit costs milliseconds of CPU and mostly
per statement: `save_*` append the row to the journal (service/journal.py: on disk when
it returns, so a killed process loses nothing acknowledged); a moment later the journal's
mover commits the segment written since the last batch in one transaction, DuckDB
reading each table's file itself (two statements per table). A read first moves the
journaled rows in, so it sees every write before it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb

from .journal import ORDER, Journal
from .word_index import WORD_SQL

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
CHALLENGE_COLUMNS = ["id", "source", "created_at"]
# table -> (columns, key). Every row has a key, so writing a journaled row again after a
# crash changes nothing.
TABLES: dict[str, tuple[list[str], str]] = {
    "sessions": (SESSION_COLUMNS, "id"),
    "messages": (MESSAGE_COLUMNS, "id"),
    "events": (EVENT_COLUMNS, "id"),
    "workspaces": (WORKSPACE_COLUMNS, "session_id"),
    "challenges": (CHALLENGE_COLUMNS, "id"),
}
Row = tuple[str, list[Any]]  # (table, its columns' values in order), written from Python
Rewritten = dict[str, set[Any]]  # table -> keys of rows written before (see Store.write)
ROWS_PER_STATEMENT = 500
# From this many distinct keys a batch is read by DuckDB from the journal's files; below,
# its rows are bound from Python, the latest of each key only. A chat turn writes six rows
# of three new keys (a session's row is rewritten every turn). Measured per batch of such
# turns, in process CPU: at 10 keys 6 ms bound against 10 ms read by DuckDB, at 120 keys
# both 14-15 ms, at 240 keys 29 against 15 ms.
FILE_IMPORT_KEYS = 100
# How long the journal's mover lets rows gather before moving them into DuckDB together
# (the defaults of IBExtension.database_batch_seconds and database_batch_max_seconds): a
# batch of FILE_IMPORT_KEYS keys or more moves after BATCH_SECONDS; a smaller one, which
# costs DuckDB about as much (its CPU is mostly per statement), waits up to
# BATCH_MAX_SECONDS for more rows.
BATCH_SECONDS = 0.5
BATCH_MAX_SECONDS = 2.0
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


def _encode(columns: list[str], d: dict[str, Any]) -> dict[str, Any]:
    return {c: json.dumps(d[c]) if c in JSON_COLUMNS and not isinstance(d[c], Encoded) else d[c]
            for c in columns}


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Store:
    def __init__(self, path: Path, memory_mb: int = 256, batch_seconds: float = BATCH_SECONDS,
                 file_import_keys: int = FILE_IMPORT_KEYS,
                 batch_max_seconds: float = BATCH_MAX_SECONDS):
        self.path = Path(path)
        self.memory_mb = memory_mb
        self.batch_seconds = batch_seconds
        self.batch_max_seconds = max(batch_max_seconds, batch_seconds)
        self.file_import_keys = file_import_keys
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ib-duckdb")
        self._con: duckdb.DuckDBPyConnection | None = None
        self._journal = Journal(self.path.with_name(self.path.name + ".journal"))
        self._pending = 0  # rows journaled, not yet in DuckDB
        # table -> keys the pending rows rewrite that may be in DuckDB already: only those
        # are deleted as the batch moves in. A DELETE by every key of the batch joins
        # against the whole table: 30 ms of CPU per batch at a million messages.
        self._rewritten: Rewritten = {}
        self._keys: set[tuple[str, Any]] = set()  # (table, key) of the pending rows
        self._new: set[tuple[str, Any]] = set()  # those first written in this batch
        self._json_types: dict[str, str] = {}  # table -> read_json's columns={...}
        self._cond = threading.Condition()
        self._closing = False
        self._mover: threading.Thread | None = None

    # ---- plumbing ----------------------------------------------------------------
    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor.submit(self._open).result()
        self._mover = threading.Thread(target=self._move_batches, name="ib-journal",
                                       daemon=True)
        self._mover.start()

    def _open(self) -> None:
        # DuckDB would cache up to 80 % of the machine's memory; past this it spills to disk.
        self._con = duckdb.connect(str(self.path), config={"memory_limit": f"{self.memory_mb}MB"})
        self._migrate()
        for table in TABLES:
            # JSON columns are journaled as their text, cast to JSON as they go in.
            types = dict(self._con.execute(
                "SELECT column_name, replace(data_type, 'JSON', 'VARCHAR') "
                "FROM information_schema.columns WHERE table_name = ?", [table]).fetchall())
            self._json_types[table] = "{" + ", ".join(
                f"{_sql_text(c)}: {_sql_text(types[c])}" for c in TABLES[table][0]
            ) + f", '{ORDER}': 'BIGINT'}}"
        leftovers = self._journal.segments()
        if leftovers:  # rows acknowledged before the last process stopped: keep them
            log.warning("writing the rows of %d journal segments the last run did not",
                        len(leftovers))
        for segment in leftovers:
            self._move(segment, None)
        self._journal.open()

    def close(self) -> None:
        """Move every journaled row into DuckDB, then checkpoint and close the file."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._mover is not None:
            self._mover.join()
        if self._con is None:
            self._executor.shutdown(wait=True)
            return

        def _close() -> None:
            assert self._con is not None
            self._drain()
            self._con.execute("CHECKPOINT")
            self._con.close()
            self._con = None
            self._journal.close()

        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Queue a read on the database thread, after the rows written before it;
        failures are logged, never lost silently."""
        fut = self._executor.submit(self._after_drain, fn, *args)
        fut.add_done_callback(_log_failure)
        return fut

    def _after_drain(self, fn: Callable[..., Any], *args: Any) -> Any:
        self._drain()
        return fn(*args)

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

    # ---- write-behind: journal now, DuckDB in batches ---------------------------------
    def write(self, table: str, row: dict[str, Any], *, new: bool = False) -> None:
        """Keep `row` for `table`: on disk (the journal) when this returns, in DuckDB
        within `batch_seconds`, and in every read queued after this call. `new`: the
        caller has just made the row's key, so no row with it can be in DuckDB yet."""
        columns, key = TABLES[table]
        values = _encode(columns, row)
        with self._cond:
            self._journal.append(table, values)
            keyed = (table, values[key])
            self._keys.add(keyed)
            if new:
                self._new.add(keyed)
            elif keyed not in self._new:  # a reply's rows within one batch need no DELETE
                self._rewritten.setdefault(table, set()).add(values[key])
            self._pending += 1
            if self._pending == 1 or len(self._keys) == self.file_import_keys:
                self._cond.notify()

    def _move_batches(self) -> None:
        """The journal's mover: a moment after rows arrive, move them into DuckDB together
        (after `batch_seconds` once the batch is full, else after `batch_max_seconds`)."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closing)
                began = time.monotonic()
                # Let the batch fill; only closing cuts it short.
                if self._cond.wait_for(lambda: self._closing, timeout=self.batch_seconds):
                    return
                if self._cond.wait_for(
                        lambda: self._closing or len(self._keys) >= self.file_import_keys,
                        timeout=began + self.batch_max_seconds - time.monotonic()) \
                        and self._closing:
                    return
            try:
                self._executor.submit(self._drain).result()
            except Exception:  # the next batch or read tries again
                log.exception("moving journaled rows into DuckDB failed")

    def _drain(self) -> None:
        """On the database thread: commit every journaled row, then drop its segment."""
        with self._cond:
            if not self._pending:
                return
            keys, self._keys, self._new, self._pending = len(self._keys), set(), set(), 0
            rewritten, self._rewritten = self._rewritten, {}
            segment = self._journal.rotate()
        self._move(segment, rewritten, by_file=keys >= self.file_import_keys)

    def _move(self, segment: int, rewritten: Rewritten | None, *, by_file: bool = True) -> None:
        """Commit a closed journal segment, then delete it. A big one DuckDB reads from
        its files; a small one, or one DuckDB refuses (a row it rejects, the partial last
        line of a killed write, a row past read_json's 16 MB), goes in from Python, one
        row at a time if need be. `rewritten`: the keys to delete first (table -> keys);
        None (a replay: what the last process wrote is unknown) deletes every key."""
        if by_file:
            try:
                self._import(self._journal.files(segment), rewritten)
                self._journal.forget(segment)
                return
            except duckdb.Error as e:
                log.warning("journal segment %d did not go in whole (%s); writing its rows "
                            "from Python", segment, e)
        self._commit([(table, [row.get(c) for c in TABLES[table][0]])
                      for table, row in self._journal.rows(segment)], rewritten)
        self._journal.forget(segment)

    def _import(self, files: dict[str, Path], rewritten: Rewritten | None) -> None:
        """One transaction: per table, DELETE the keys rewritten (on a replay, every key
        its file holds) and INSERT the latest row of each key."""
        con = self.con
        con.execute("BEGIN")
        try:
            for table, path in files.items():
                columns, key = TABLES[table]
                rows = (f"read_json({_sql_text(str(path))}, format='newline_delimited', "
                        f"columns={self._json_types[table]})")
                if rewritten is None:
                    con.execute(f'DELETE FROM {table} WHERE "{key}" IN (SELECT "{key}" FROM {rows})')
                elif table in rewritten:
                    self._delete(table, list(rewritten[table]))
                con.execute(f"INSERT INTO {table} ({_cols(columns)}) SELECT {_cols(columns)} "
                            f'FROM {rows} QUALIFY row_number() OVER (PARTITION BY "{key}" '
                            f"ORDER BY {ORDER} DESC) = 1")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise

    def _commit(self, rows: list[Row], rewritten: Rewritten | None) -> None:
        """Write `rows` in one transaction; if that fails, each row alone, so that one bad
        row (logged with its table) cannot keep the others out."""
        try:
            self._transaction(rows, rewritten)
        except Exception as e:
            log.error("a batch of %d rows failed; writing them one by one", len(rows),
                      exc_info=e)
            for table, values in rows:
                try:
                    self._transaction([(table, values)], rewritten)
                except Exception as one:
                    log.error("a row of %s could not be written: %r", table, values,
                              exc_info=one)

    def _transaction(self, rows: list[Row], rewritten: Rewritten | None) -> None:
        """Rows replace the rows with their keys: a DELETE of the keys rewritten (all on a
        replay), then a plain INSERT (DuckDB's INSERT OR REPLACE costs about three times
        as much)."""
        by_table: dict[str, dict[Any, list[Any]]] = {}
        for table, values in rows:
            columns, key = TABLES[table]
            by_table.setdefault(table, {})[values[columns.index(key)]] = values  # last wins
        con = self.con
        con.execute("BEGIN")
        try:
            for table, keyed in by_table.items():
                old = keyed if rewritten is None else rewritten.get(table, set()) & keyed.keys()
                if old:
                    self._delete(table, list(old))
                self._insert(table, list(keyed.values()))
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise

    def _delete(self, table: str, keys: list[Any]) -> None:
        key = TABLES[table][1]
        for start in range(0, len(keys), ROWS_PER_STATEMENT):
            part = keys[start:start + ROWS_PER_STATEMENT]
            self.con.execute(f'DELETE FROM {table} WHERE "{key}" IN ('
                             + ", ".join("?" for _ in part) + ")", part)

    def _insert(self, table: str, rows: list[list[Any]]) -> None:
        columns = TABLES[table][0]
        one = "(" + ", ".join("?" for _ in columns) + ")"
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            part = rows[start:start + ROWS_PER_STATEMENT]
            self.con.execute(f"INSERT INTO {table} ({_cols(columns)}) VALUES "
                             + ", ".join([one] * len(part)), [v for r in part for v in r])

    # ---- sessions ----------------------------------------------------------------
    def save_session(self, row: dict[str, Any]) -> None:
        self.write("sessions", row)

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
    def save_message(self, row: dict[str, Any], *, new: bool = False) -> None:
        self.write("messages", row, new=new)

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

    def search_words(self, terms: list[str]) -> set[str]:
        """Sessions where every term starts a word: what the word index answers, by a scan
        (until the index is filled). `terms` are lowercase word runs: nothing to escape."""
        having = " AND ".join("bool_or(regexp_matches(content, ?))" for _ in terms)
        rows = self.con.execute(f"SELECT session_id FROM messages GROUP BY session_id "
                                f"HAVING {having}", [rf"(?i)\b{t}" for t in terms]).fetchall()
        return {r[0] for r in rows}

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own, for a long read on another thread beside this one's
        writes (it reads the file as it was when its query started)."""
        return self.submit(lambda: self.con.cursor()).result()

    @staticmethod
    def conversation_words(reader: duckdb.DuckDBPyConnection,
                           rows: int = 5000) -> Iterator[list[tuple[str, list[str]]]]:
        """Each word of the conversations, lowercased, with the sessions using it."""
        reader.execute(
            "SELECT word, list(DISTINCT session_id) FROM (SELECT session_id, "
            f"lower(unnest(regexp_extract_all(content, '{WORD_SQL}'))) AS word "
            "FROM messages) GROUP BY word")
        while chunk := reader.fetchmany(rows):
            yield chunk

    # ---- events ------------------------------------------------------------------
    def save_event(self, row: dict[str, Any]) -> None:
        self.write("events", row, new=True)  # events are only ever added

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
        self.write("workspaces", row)

    def load_workspaces(self) -> list[dict[str, Any]]:
        rows = self.con.execute(f"SELECT {_cols(WORKSPACE_COLUMNS)} FROM workspaces").fetchall()
        return [_decode(WORKSPACE_COLUMNS, r) for r in rows]

    # ---- interviewer-made challenges ---------------------------------------------
    def save_challenge(self, challenge_id: str, source: str, at: float) -> None:
        self.write("challenges", {"id": challenge_id, "source": source, "created_at": at})

    def challenges(self) -> list[tuple[str, str]]:
        return self.con.execute("SELECT id, source FROM challenges ORDER BY created_at").fetchall()


def _log_failure(fut: Future) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("database operation failed", exc_info=fut.exception())
