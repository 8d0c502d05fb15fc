"""Step output captured without helper processes, so that nothing of `mds-assets build` outlives it.

Dagster's default compute log manager (`LocalComputeLogManager`, Dagster 1.13.27, pinned)
mirrors each step's stdout and stderr back to the terminal through a `tail -F` process per
stream, holding the caller's stdout/stderr, plus a Python watcher that kills the `tail` within
a second of noticing its step's process gone. When the process is killed (`kill -9`) between
starting a `tail` and its watcher, the `tail` is left under init for good, and whoever reads
the build's output waits forever.

`FileComputeLogManager` writes step output to the same files (so the UI shows it as before)
and starts no process. `mds-assets build` uses it in place of the default one; a step's output
is then in the UI's step logs, not on the terminal (the build prints its own summary).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

# Not exported by `dagster` 1.13.27 (pinned): the default compute log manager and its helpers.
from dagster._core.execution.compute_logs import redirect_to_file
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._serdes import ConfigurableClassData
from dagster._utils import ensure_file, touch_file

MODULE, CLASS = __name__, "FileComputeLogManager"


class FileComputeLogManager(LocalComputeLogManager):
    """LocalComputeLogManager's files, written by redirecting the step's streams, without `tail -F`."""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]) -> Self:
        return cls(inst_data=inst_data, **config_value)  # the parent's builds a LocalComputeLogManager

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Generator[CapturedLogContext, None, None]:
        out_path = ensure_file(self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT]))
        err_path = ensure_file(self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR]))
        with redirect_to_file(sys.stdout, out_path), redirect_to_file(sys.stderr, err_path):
            yield CapturedLogContext(log_key)
        touch_file(self.complete_artifact_path(log_key))  # type: ignore[no-untyped-call]  # as the default does


def without_tail(compute_logs: ConfigurableClassData) -> dict[str, Any] | None:
    """Instance overrides that swap Dagster's default compute log manager for FileComputeLogManager
    over the same folder; None when another manager is configured (S3, say: it is kept).
    `compute_logs` is the manager as an instance's configuration names it (`InstanceRef.
    compute_logs_data`): deciding costs no instance."""
    configured = getattr(importlib.import_module(compute_logs.module_name), compute_logs.class_name, None)
    if configured is not LocalComputeLogManager:
        return None
    return {"compute_logs": {"module": MODULE, "class": CLASS, "config": dict(compute_logs.config_dict)}}
