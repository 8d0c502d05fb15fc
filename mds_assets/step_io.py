"""Step outputs under an fsspec URL every worker reaches — never a machine's own disk.

Dagster's default IO manager pickles step outputs under `$DAGSTER_HOME/storage/` of the
machine that ran the step, so a step on another machine (a Celery worker, a Kubernetes Job)
could not read its input. `StepIOManager` keeps them beside the data instead, by default under
`<out_url>/.dagster-io/` of the code location's default output (`MDS_STEP_IO_URL`, or
`resources: io_manager: config: base_url` in the launchpad, sets another place; `mds-assets
build` puts them under its own `--out`): the same code on one machine, a shared filesystem and
S3. A launchpad run that changes only `mds_settings.out_url` keeps its step outputs at the
default place, which is as reachable; Dagster gives an IO manager no view of another
resource's run config. Only the small outputs pass through it
(a batch's profile and its write plan); the shards never do.
"""

import os
import pickle
import posixpath
import uuid
from typing import Any

import fsspec
from dagster import ConfigurableIOManager, InputContext, OutputContext
from fsspec.implementations.local import LocalFileSystem
from pydantic import Field

from .core.layout import check_partition_key
from .resources import MDSSettings, absolute_url

STEP_IO_DIR = ".dagster-io"
STEP_IO_VARIABLE = "MDS_STEP_IO_URL"


def step_io_url(out_url: str) -> str:
    """Where step outputs go for a dataset at `out_url`: `<out_url>/.dagster-io`."""
    return posixpath.join(out_url.rstrip("/"), STEP_IO_DIR)


def step_io_for(settings: MDSSettings) -> "StepIOManager":
    return StepIOManager(base_url=step_io_url(settings.out_url), storage_options=dict(settings.storage_options))


def step_io_from_environment(settings: MDSSettings) -> "StepIOManager":
    """The code location's default: MDS_STEP_IO_URL, else beside the default output."""
    url = os.environ.get(STEP_IO_VARIABLE)
    return StepIOManager(base_url=absolute_url(url)) if url else step_io_for(settings)


class StepIOManager(ConfigurableIOManager):
    """Pickles step outputs to `<base_url>/<asset key>/<partition key>.pickle`."""

    base_url: str = Field(description="fsspec URL every step process reaches (shared disk, S3, ...)")
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options (no credentials: use AWS_* variables)"
    )

    def root(self) -> str:
        return self.base_url

    def _path(self, context: InputContext | OutputContext) -> str:
        if context.has_asset_key:
            parts = list(context.asset_key.path)
            name = check_partition_key(context.asset_partition_key) if context.has_asset_partitions else "__all__"
        else:  # an op output outside any asset: scoped to its run (run id, step, output name)
            output = context if isinstance(context, OutputContext) else context.upstream_output
            if output is None:
                raise ValueError(f"input {context.name} has no upstream output to load")
            *parts, name = ["runs", *output.get_identifier()]
        for part in parts:
            check_partition_key(part.replace(" ", "_"))
        return posixpath.join(self.root().rstrip("/"), *parts, f"{name}.pickle")

    def _fs(self, url: str) -> tuple[fsspec.AbstractFileSystem, str]:
        return fsspec.core.url_to_fs(url, **self.storage_options)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        url = self._path(context)
        fs, path = self._fs(url)
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        if isinstance(fs, LocalFileSystem):  # never a half-written pickle for a reader on another machine
            temporary = f"{path}.tmp-{uuid.uuid4().hex}"
            with fs.open(temporary, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        else:  # an object store PUT is atomic by itself
            fs.pipe_file(path, data)
        context.add_output_metadata({"step_output": url})

    def load_input(self, context: InputContext) -> Any:
        url = self._path(context)
        fs, path = self._fs(url)
        try:
            return pickle.loads(fs.cat_file(path))
        except FileNotFoundError:
            raise FileNotFoundError(
                f"step output {url} is missing: materialise the upstream asset "
                f"{context.asset_key.to_user_string() if context.has_asset_key else ''} "
                "for this partition first"
            ) from None
