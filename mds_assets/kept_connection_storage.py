"""Dagster's SQLite run and event-log storages, keeping their connections open.

Dagster's SQLite storages open a connection for every query and every event (a new engine,
connect, schema read, commit, close) and, the connection being the last one, SQLite checkpoints
the WAL into the database and deletes it on every close: two to three fsyncs per connection,
7 ms an event on a quiet machine, 35 ms and more under load; with its 7 events and ~15 queries a
partition opens ~26 connections on them (docs/benchmarks.md). Kept open, a connection costs its
statements and commit.

The `dagster.yaml` that mds-assets writes names these classes (Dagster loads storages by module
and class name), so they subclass Dagster's own SQLite storages (dagster 1.13.27, pinned);
tests/mds_assets/test_kept_connection_storage.py holds what they rely on.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster import DagsterEventType, EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

KEPT_RUN_DATABASES = 4  # run databases (one per run) kept open at once: a run writes one, the UI reads a few
RUN_ENDED_EVENTS = frozenset(
    {DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED}
)


def _wal_and_normal_sync(dbapi_connection: Any, _record: Any) -> None:
    """Every connection in WAL mode (as Dagster creates its databases) with synchronous=NORMAL:
    a commit appends to the WAL without an fsync, the WAL is synced when checkpointed. SQLite's
    documented trade-off for WAL: no corruption ever, and every commit survives a crash of the
    process; only an OS crash or power loss can lose the last commits."""
    dbapi_connection.execute("PRAGMA journal_mode=WAL").close()
    dbapi_connection.execute("PRAGMA synchronous=NORMAL").close()


class _KeptEngines:
    """Engines by database URL, each pooling connections that stay open; at most `limit` besides
    the pinned ones, the least recently used closed first. A forked child uses none of its
    parent's (SQLite forbids using a connection across fork()), and never closes them either."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._pinned: set[str] = set()
        self._lock = threading.Lock()
        _KEPT.add(self)

    def get(self, url: str, pinned: bool = False) -> Engine:
        with self._lock:
            engine = self._engines.get(url)
            if engine is None:
                engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
                event.listen(engine, "connect", _wal_and_normal_sync)
                self._engines[url] = engine
            self._engines.move_to_end(url)
            if pinned:
                self._pinned.add(url)
            unpinned = [kept for kept in self._engines if kept not in self._pinned]
            for url_to_close in unpinned[: max(0, len(unpinned) - self._limit)]:
                self._engines.pop(url_to_close).dispose()
            return engine

    def close(self, url: str) -> None:
        """Close the database's connections (SQLite then checkpoints its WAL into the file)."""
        with self._lock:
            engine = self._engines.pop(url, None)
            self._pinned.discard(url)
        if engine is not None:
            engine.dispose()

    def close_all(self) -> None:
        for url in list(self._engines):
            self.close(url)

    def forget_after_fork(self) -> None:
        _INHERITED.extend(self._engines.values())  # referenced forever, so never closed in the child
        self._engines, self._pinned, self._lock = OrderedDict(), set(), threading.Lock()


_KEPT: weakref.WeakSet[_KeptEngines] = weakref.WeakSet()
_INHERITED: list[Engine] = []


def _forget_inherited_engines() -> None:
    for kept in list(_KEPT):
        kept.forget_after_fork()


os.register_at_fork(after_in_child=_forget_inherited_engines)


class KeptConnectionSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log (an index database, a database per run), with each database's
    connection kept open (the index's always, the runs' last `KEPT_RUN_DATABASES`; a run's is
    closed once its run has ended).

    The UI follows a running run's log by watching its `<run_id>.db` file, which Dagster's own
    storage modifies on every event when it closes the connection (SQLite checkpoints then); kept
    open, a commit lands in the `-wal` file alone, so the `.db` file is touched after each write.

    Relies on `SqliteEventLogStorage._connect(shard)` being the one way it opens a database, on
    `_initdb`, `_initialized_dbs`, `_db_lock`, `conn_string_for_shard`, `path_for_shard` and
    `has_table`, and on the UI's watcher reacting to a modification of `<run_id>.db`."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._kept = _KeptEngines(KEPT_RUN_DATABASES)  # before Dagster's __init__, which connects
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> KeptConnectionSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._kept.get(self.conn_string_for_shard(shard), pinned=shard == INDEX_SHARD_NAME)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                changes_before = conn.connection.dbapi_connection.total_changes  # type: ignore[union-attr]
                with conn.begin():
                    yield conn
                wrote = conn.connection.dbapi_connection.total_changes != changes_before  # type: ignore[union-attr]
            if wrote and shard != INDEX_SHARD_NAME:
                os.utime(self.path_for_shard(shard))  # the UI's watcher of the run's log

    def store_event(self, event: EventLogEntry) -> None:
        super().store_event(event)
        if event.is_dagster_event and event.dagster_event_type in RUN_ENDED_EVENTS:
            self._kept.close(self.conn_string_for_shard(event.run_id))  # no more writes: its WAL checkpointed

    def has_table(self, table_name: str) -> bool:
        """Dagster asks on every asset check event, through a connection of its own; a table once
        there stays (migrations add tables, none drops one)."""
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    def wipe(self) -> None:
        self._kept.close_all()  # the run databases are deleted
        super().wipe()

    def dispose(self) -> None:
        self._kept.close_all()
        super().dispose()


class KeptConnectionSqliteRunStorage(SqliteRunStorage):
    """Dagster's SQLite run storage (`runs.db`) with its connections kept open. Relies on
    `SqliteRunStorage.connect()` being the one way it opens the database, and on `from_local`
    building the storage through `cls`."""

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._kept = _KeptEngines(0)
        super().__init__(conn_string, inst_data)

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> KeptConnectionSqliteRunStorage:
        return cls.from_local(inst_data=inst_data, **config_value)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._kept.get(self._conn_string, pinned=True).connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self._kept.close_all()
        super().dispose()
