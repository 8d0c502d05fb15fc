"""What the UI says of `mds_shards`' partitioned `shard_size` check, read from the GraphQL the UI
reads (`dagster dev`): its Partitions sub-tab (`partitionStatuses`), the check's status in the
Checks list and in Lineage (`executionForLatestMaterialization`) after a build and after the
Checks tab's "Execute all"."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from writer import StreamingDatasetWriter

from ..commands import MDS_ASSETS, build_arguments
from ..mds_assets.conftest import record, write_batch
from .dagster_server import REPO, DagsterDev

FIELDS = "uid,text,n:int64"
KEYS = ["batch-0", "batch-1", "batch-2"]
SHARD_SIZE_LIMIT = 1000
CHECK_STATUS = """query($asset: AssetKeyInput!) { assetNodeOrError(assetKey: $asset) { ... on AssetNode {
  jobNames assetChecksOrError { ... on AssetChecks { checks { name canExecuteIndividually jobNames
    executionForLatestMaterialization { status evaluation { success severity } }
    partitionStatuses { __typename ... on AssetCheckDefaultPartitionStatuses {
      succeededPartitions failedPartitions inProgressPartitions skippedPartitions executionFailedPartitions } }
  } } } } } }"""
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
RUN_STATUS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    """`dagster dev` on an instance where `mds-assets build` has built and published three partitions."""
    root = tmp_path_factory.mktemp("check-status")
    for number, key in enumerate(KEYS):
        write_batch(root / "raw", f"{key}.jsonl", [record(number, n) for n in range(20)])
    env = {
        "MDS_RAW_URL": str(root / "raw"),
        "MDS_OUT_URL": str(root / "out"),
        "MDS_FIELDS": FIELDS,
        "MDS_SHARD_SIZE_LIMIT": str(SHARD_SIZE_LIMIT),
    }
    dagster = DagsterDev(root / "home", env, root / "dagster-dev.log")
    built = subprocess.run(
        [*MDS_ASSETS, *build_arguments(root / "raw", root / "out", FIELDS), "--shard-size-limit", "1000", "--quiet"],
        env={**os.environ, **env, "DAGSTER_HOME": str(root / "home")},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    dagster.root = root  # type: ignore[attr-defined]
    try:
        dagster.start()
        yield dagster
    finally:
        dagster.stop()


def _shard_size(server: DagsterDev) -> dict[str, Any]:
    node = server.graphql(CHECK_STATUS, {"asset": {"path": ["mds_shards"]}})["assetNodeOrError"]
    (check,) = [c for c in node["assetChecksOrError"]["checks"] if c["name"] == "shard_size"]
    return {"job_names": node["jobNames"], **check}


def _partitions(check: dict[str, Any]) -> dict[str, list[str]]:
    statuses = check["partitionStatuses"]
    assert statuses["__typename"] == "AssetCheckDefaultPartitionStatuses", statuses
    return {name.removesuffix("Partitions"): sorted(keys) for name, keys in statuses.items() if name != "__typename"}


def _execute_all(server: DagsterDev, check: dict[str, Any]) -> str:
    """Launch a run as the Checks tab's "Execute all" does (Dagster's ExecuteChecksButton.tsx); its final status."""
    selector = {
        "repositoryLocationName": "mds_assets",
        "repositoryName": "__repository__",
        "jobName": check["jobNames"][0] if check["jobNames"] else check["job_names"][0],
        "assetSelection": [],
        "assetCheckSelection": [{"assetKey": {"path": ["mds_shards"]}, "name": "shard_size"}],
    }
    params = {"mode": "default", "executionMetadata": {}, "runConfigData": "{}", "selector": selector}
    answer = server.graphql(LAUNCH, {"params": params})["launchRun"]
    assert answer["__typename"] == "LaunchRunSuccess", answer
    run_id = answer["run"]["runId"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = server.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return str(status)
        time.sleep(1)
    raise TimeoutError(f"the Execute all run {run_id} did not finish within 180 s")


def test_after_a_build_every_partition_of_the_check_shows_passed(server: DagsterDev) -> None:
    check = _shard_size(server)
    assert _partitions(check)["succeeded"] == KEYS  # the Partitions sub-tab: "Passed (3)", not "Missing (3)"
    assert check["executionForLatestMaterialization"]["status"] == "SUCCEEDED"  # Checks list and Lineage
    assert check["executionForLatestMaterialization"]["evaluation"]["success"] is True


def test_after_execute_all_passes_every_partition_shows_passed(server: DagsterDev) -> None:
    assert _execute_all(server, _shard_size(server)) == "SUCCESS"
    check = _shard_size(server)
    assert _partitions(check) == {
        "succeeded": KEYS,
        "failed": [],
        "inProgress": [],
        "skipped": [],
        "executionFailed": [],
    }
    assert check["executionForLatestMaterialization"]["status"] == "SUCCEEDED"


def test_after_execute_all_finds_an_oversized_partition_it_alone_shows_failed(server: DagsterDev) -> None:
    with StreamingDatasetWriter(
        str(server.root / "out" / "partitions" / "batch-1"),  # type: ignore[attr-defined]
        ["uid"],
        shard_size_limit=10**6,
        overwrite=True,
    ) as writer:
        writer.write_samples([{"uid": b"x" * 800}, {"uid": b"y" * 800}], use_tqdm=False)
    assert _execute_all(server, _shard_size(server)) == "FAILURE"  # a blocking ERROR fails the run
    partitions = _partitions(_shard_size(server))
    assert (partitions["succeeded"], partitions["failed"]) == (["batch-0", "batch-2"], ["batch-1"])
