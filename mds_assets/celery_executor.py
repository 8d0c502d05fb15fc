"""The Celery executor, whose runs stop the tasks they leave running when they end.

dagster-celery's execution loop revokes its tasks when its run is interrupted (the UI's
Terminate, Ctrl-C), but without `terminate`: such a revoke only drops a task still queued, so a
step already running on a worker runs on, writes its partitions and records them in a run that
has ended. When the loop fails (the broker or the instance lost) it revokes nothing at all.

Here each task a run submits is revoked with `terminate=True` when the loop revokes it, and every
task not yet collected when the loop ends by an exception. Celery then sends SIGTERM to the
worker process running the task, which Dagster turns into an interrupt of the step: the writer
publishes nothing, releases the partition's lock, and the step fails. A run whose orchestrator is
killed outright runs no code at all; its steps stop themselves once the run is marked failed
(`assets/batch_pipeline.py`).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from typing import Any

from celery.result import AsyncResult
from dagster import DagsterEvent, InitExecutorContext, executor, multiple_process_executor_requirements
from dagster_celery import celery_executor
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor

from .dagster_internals import celery_execution_loop

REVOKE_SECONDS = 10.0  # the most a failing run spends revoking its tasks (the broker may be the one lost)


class TerminatingResult:
    """A submitted task as the loop sees it: its revoke terminates the task even once it runs."""

    def __init__(self, result: AsyncResult) -> None:
        self.result = result
        self.collected = False

    def ready(self) -> bool:
        return bool(self.result.ready())

    def get(self) -> Any:
        self.collected = True
        return self.result.get()

    def revoke(self) -> None:
        self.result.revoke(terminate=True)


class TerminatingCeleryExecutor(CeleryExecutor):
    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[DagsterEvent]:
        submitted: list[TerminatingResult] = []

        def keep(result: AsyncResult) -> TerminatingResult:
            submitted.append(TerminatingResult(result))
            return submitted[-1]

        try:
            yield from celery_execution_loop(plan_context, execution_plan, keep)
        except BaseException:  # GeneratorExit too: whoever consumed the run's events stopped
            terminate_uncollected(submitted)
            raise


def terminate_uncollected(submitted: list[TerminatingResult]) -> None:
    """Revoke, terminating, every task whose result the loop has not collected. Bounded: with the
    broker gone a revoke would retry for ever, and the run must still end (its steps then stop
    themselves once it is marked failed)."""
    uncollected = [task for task in submitted if not task.collected]
    if not uncollected:
        return
    problems: list[BaseException] = []

    def revoke_all() -> None:
        for task in uncollected:
            try:
                task.revoke()
            except Exception as error:
                problems.append(error)

    revoking = threading.Thread(target=revoke_all, name="revoke-celery-tasks", daemon=True)
    revoking.start()
    revoking.join(REVOKE_SECONDS)
    if revoking.is_alive() or problems:
        ids = ", ".join(task.result.id for task in uncollected)
        reason = f"{problems[0]}" if problems else f"no answer from the broker within {REVOKE_SECONDS:g} s"
        warnings.warn(
            f"could not revoke the Celery tasks {ids} of an ending run ({reason}); each stops itself once "
            "the run is marked failed",
            stacklevel=2,
        )


@executor(name="celery", config_schema=CELERY_CONFIG, requirements=multiple_process_executor_requirements())
def terminating_celery_executor(init_context: InitExecutorContext) -> TerminatingCeleryExecutor:
    """dagster-celery's `celery_executor`, with the same configuration, whose runs terminate the
    tasks they leave running when they end."""
    creation = celery_executor.executor_creation_fn
    assert creation is not None
    base = creation(init_context)
    assert isinstance(base, CeleryExecutor)
    return TerminatingCeleryExecutor(  # type: ignore[no-untyped-call]
        retries=base.retries,
        broker=base.broker,
        backend=base.backend,
        include=base.include,
        config_source=vars(base.config_source),
    )
