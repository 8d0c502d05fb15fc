"""The SQLite storages of the instance mds-assets writes, keeping their connections open: the
UI still follows a running run, a forked worker never uses its parent's connections, and a
dagster.yaml naming them loads them."""

import logging
import multiprocessing
import queue
import sqlite3
import time
import uuid

import pytest
from dagster import DagsterInstance, EventLogEntry

from mds_assets.build import instance_config
from mds_assets.kept_connection_storage import KeptConnectionSqliteEventLogStorage, KeptConnectionSqliteRunStorage


def _log_line(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(
        user_message=message,
        level=logging.INFO,
        job_name="a_job",
        run_id=run_id,
        error_info=None,
        timestamp=time.time(),
    )


def _messages(storage: KeptConnectionSqliteEventLogStorage, run_id: str) -> list[str]:
    return [record.event_log_entry.user_message for record in storage.get_records_for_run(run_id).records]


def test_the_kept_connection_event_log_wakes_the_uis_watcher_of_a_running_run(tmp_path):
    """The UI follows a running run's log by watching its `<run_id>.db` file (Dagster's watchdog)."""
    storage = KeptConnectionSqliteEventLogStorage(str(tmp_path))
    run_id = str(uuid.uuid4())
    storage.store_event(_log_line(run_id, "before watching"))  # the run's database open, kept
    seen: queue.Queue[str] = queue.Queue()

    def watcher(entry, _cursor):
        seen.put(entry.user_message)

    storage.watch(run_id, None, watcher)
    try:
        storage.store_event(_log_line(run_id, "while watched"))
        messages = [seen.get(timeout=30)]
        while messages[-1] != "while watched":
            messages.append(seen.get(timeout=30))
    finally:
        storage.end_watch(run_id, watcher)
        storage.dispose()
    assert messages[-1] == "while watched", messages


def _store_in_child(storage: KeptConnectionSqliteEventLogStorage, run_id: str, opened) -> None:
    real_connect = sqlite3.dbapi2.connect

    def counting_connect(*args, **kwargs):
        opened.value += 1
        return real_connect(*args, **kwargs)

    sqlite3.dbapi2.connect = counting_connect
    storage.store_event(_log_line(run_id, "child"))


def test_a_forked_child_writes_through_connections_of_its_own(tmp_path):
    """SQLite forbids using a connection across fork(): `mds-assets build` forks its workers."""
    storage = KeptConnectionSqliteEventLogStorage(str(tmp_path))
    run_id = str(uuid.uuid4())
    storage.store_event(_log_line(run_id, "parent, before"))  # the run's database open, kept
    context = multiprocessing.get_context("fork")
    opened = context.Value("i", 0)
    child = context.Process(target=_store_in_child, args=(storage, run_id, opened))
    child.start()
    child.join(timeout=60)
    storage.store_event(_log_line(run_id, "parent, after"))
    try:
        assert child.exitcode == 0
        assert opened.value == 1  # the run's database, opened again by the child
        assert _messages(storage, run_id) == ["parent, before", "child", "parent, after"]
    finally:
        storage.dispose()


@pytest.mark.parametrize("module", ["mds_assets.kept_connection_storage", "mds_assets.dagster_internals"])
def test_an_instance_whose_yaml_names_the_kept_connection_storages_loads_and_keeps_runs(tmp_path, module):
    """The dagster.yaml mds-assets writes names them by module; one naming them in
    `mds_assets.dagster_internals` loads the same classes."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_config(home).replace("mds_assets.kept_connection_storage", module))
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage) is KeptConnectionSqliteRunStorage
        assert type(instance.event_log_storage) is KeptConnectionSqliteEventLogStorage
        run_id = str(uuid.uuid4())
        instance.event_log_storage.store_event(_log_line(run_id, "stored"))
        assert _messages(instance.event_log_storage, run_id) == ["stored"]
