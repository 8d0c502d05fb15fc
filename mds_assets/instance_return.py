"""`mds-assets build` after the Dagster instance's database failed past Dagster's own retries.

The runs the build was orchestrating could not record their end, so the instance holds them as
STARTED (or not yet started) although nothing runs them any more. The build waits a bounded time
(MDS_INSTANCE_RETURN_SECONDS) for the database to answer again and marks those runs failed
itself; when it gives up, it names them and says what marks them failed later
(`sensors.ended_runs_sensor`, or the next build: both `runs.fail_runs_of_ended_processes`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dagster import DagsterInstance

from . import settings
from .runs import InstanceLost, fail_unfinished_runs, is_instance_failure, last_line

POLL_SECONDS = 2.0  # between two looks; a look at a database that is down takes Dagster's retries (~6 s)
SENSOR_NAME = "ended_runs_sensor"
RETRY_WARNING = "Retrying failed database connection"  # dagster_postgres logs it on the root logger, per try


def settle_after_instance_failure(
    instance: DagsterInstance, error: BaseException, say: Callable[[str], None], wait_seconds: int | None = None
) -> str:
    """Wait up to `wait_seconds` (MDS_INSTANCE_RETURN_SECONDS) for the instance to answer, saying
    once what for; then mark failed the runs this build left unfinished. Returns the build's
    account of the failure: what was marked failed, or which runs stay STARTED and what fails them.
    With no run left unfinished there is nothing to wait for."""
    seconds = settings.INSTANCE_RETURN_SECONDS.read() if wait_seconds is None else wait_seconds
    run_ids = list(error.run_ids) if isinstance(error, InstanceLost) else []
    named = ", ".join(run_ids)
    failed = f"the Dagster instance at {instance.root_directory} failed ({last_line(error)})"
    failed += "; nothing more was published"
    if not run_ids:  # it failed before any run of this build was in it, or after every one ended
        return f"{failed}; no run of this build was left unfinished"
    if seconds > 0:
        say(
            f"mds-assets: {failed}; waiting up to {seconds} s ({settings.INSTANCE_RETURN_SECONDS.name}) for it to "
            f"answer again, to mark failed the runs this build left unfinished (runs: {named})"
        )
        if _mark_once_back(instance, run_ids, time.monotonic() + seconds):
            # (the sensor may have marked a build worker's run first, once that worker ended)
            return f"{failed}; once it answered again, the runs this build left unfinished were marked failed: {named}"
        waited = f"it did not answer within {seconds} s"
    else:
        waited = f"not waited for ({settings.INSTANCE_RETURN_SECONDS.name}=0)"
    return (
        f"{failed}; {waited}, so the runs this build left unfinished stay STARTED there (runs: {named}); once the "
        f"database is back, the code location's sensor {SENSOR_NAME} (under `dagster dev` or the daemon) or the "
        "next `mds-assets build` marks them failed"
    )


def _mark_once_back(instance: DagsterInstance, run_ids: list[str], deadline: float) -> bool:
    """Whether the instance answered before `deadline`, and those of `run_ids` still unfinished
    in it were marked failed."""
    message = (
        f"mds-assets build ({socket.gethostname()}:{os.getpid()}) lost the Dagster instance's database during "
        "this run and stopped; marked failed once the database answered again"
    )
    with _without_retry_warnings():
        while True:
            try:
                fail_unfinished_runs(instance, run_ids, message)
                return True
            except Exception as error:
                if not is_instance_failure(error):
                    raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(POLL_SECONDS, remaining))


class _DropRetryWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(RETRY_WARNING)


@contextmanager
def _without_retry_warnings() -> Iterator[None]:
    """The wait says once what it waits for; the database driver's warning per try (six a look,
    each with SQLAlchemy's text) would bury that line."""
    retry_filter = _DropRetryWarnings()
    root = logging.getLogger()
    root.addFilter(retry_filter)
    try:
        yield
    finally:
        root.removeFilter(retry_filter)
