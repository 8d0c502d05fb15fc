"""The product as users run it: `dagster dev` (webserver + daemon), driven through its GraphQL API
and a real headless Chromium. One server for the module; the tests run in file order."""

import os
import shutil
import time
from pathlib import Path

import pytest

from writer import StreamingDatasetWriter

from ..mds_assets.conftest import record, write_batch
from .dagster_server import REPO, DagsterDev

pytestmark = pytest.mark.system

FIELDS = "uid,text,blob:base64,n:int64,meta:json"
SHARD_SIZE_LIMIT = 1000
SCREENSHOTS_VARIABLE = "MDS_SCREENSHOTS_DIR"  # set (e.g. to docs/img) to refresh the screenshots of docs/ui.md
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

RUNS = """query($filter: RunsFilter) { runsOrError(filter: $filter) {
  ... on Runs { results { runId status jobName tags { key value } } } } }"""
CHECK_EXECUTIONS = """query($asset: AssetKeyInput!, $check: String!, $partition: String) {
  assetCheckExecutions(assetKey: $asset, checkName: $check, partition: $partition, limit: 5) {
    runId status partition evaluation { success severity description } } }"""
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }"""
CHECKS_OF_ASSET = """query($asset: AssetKeyInput!) { assetNodeOrError(assetKey: $asset) { ... on AssetNode {
  jobNames assetChecksOrError { ... on AssetChecks { checks { name canExecuteIndividually jobNames } } } } } }"""
JOB_PARTITIONS = """query($job: String!) { pipelineOrError(params: {repositoryLocationName: "mds_assets",
  repositoryName: "__repository__", pipelineName: $job}) { ... on Pipeline {
  partitionKeysOrError { partitionKeys } } } }"""
ADD_PARTITION = """mutation($key: String!) { addDynamicPartition(partitionsDefName: "raw_batches",
  partitionKey: $key, repositorySelector: {repositoryLocationName: "mds_assets",
  repositoryName: "__repository__"}) { __typename } }"""


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    """Where the browser tests save their screenshots: a temporary folder, so a test run leaves
    the tree as it found it; MDS_SCREENSHOTS_DIR=docs/img refreshes those of docs/ui.md (scripts/screenshots.sh)."""
    chosen = os.environ.get(SCREENSHOTS_VARIABLE)
    folder = (REPO / chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("dagster-dev")
    write_batch(root / "raw", "batch-a.jsonl", [record(1, n) for n in range(30)])
    env = {
        "MDS_RAW_URL": str(root / "raw"),
        "MDS_OUT_URL": str(root / "out"),
        "MDS_FIELDS": FIELDS,
        "MDS_SHARD_SIZE_LIMIT": str(SHARD_SIZE_LIMIT),
        "MDS_PARTITION_BYTES": "1",  # a partition per batch: the pages show each batch's partition
        "MDS_SENSOR_INTERVAL_SECONDS": "5",
    }
    dagster = DagsterDev(root / "home", env, root / "dagster-dev.log")
    dagster.root = root
    try:
        dagster.start()
        yield dagster
    finally:
        dagster.stop()


def runs(server, **filter_):
    return server.graphql(RUNS, {"filter": filter_})["runsOrError"]["results"]


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(1)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def launch(server, job, partition=None):
    params = {
        "selector": {"repositoryLocationName": "mds_assets", "repositoryName": "__repository__", "jobName": job},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}] if partition else []},
    }
    answer = server.graphql(LAUNCH, {"params": params})["launchRun"]
    assert answer["__typename"] == "LaunchRunSuccess", answer
    return answer["run"]["runId"]


def wait_for_run(server, run_id, timeout=180):
    def finished():
        (run,) = runs(server, runIds=[run_id])
        return run["status"] if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None

    return wait_for(finished, timeout, f"run {run_id}")


def check_executions(server, asset, check, partition=None):
    variables = {"asset": {"path": [asset]}, "check": check, "partition": partition}
    return server.graphql(CHECK_EXECUTIONS, variables)["assetCheckExecutions"]


def test_the_sensor_registers_a_batch_and_the_daemon_builds_it(server):
    def sensor_run_succeeded():
        return [
            r
            for r in runs(server, tags=[{"key": "dagster/partition", "value": "batch-a"}])
            if r["status"] == "SUCCESS" and any(t["key"] == "dagster/sensor_name" for t in r["tags"])
        ]

    (run,) = wait_for(sensor_run_succeeded, 150, "a sensor run for batch-a")
    assert run["jobName"] == "build_partition"
    assert (server.root / "out" / "partitions" / "batch-a" / "index.mds").exists()


def test_a_partition_and_the_index_launched_through_graphql_pass_their_checks(server):
    server.graphql(ADD_PARTITION, {"key": "batch-a"})
    assert wait_for_run(server, launch(server, "build_partition", "batch-a")) == "SUCCESS"
    assert wait_for_run(server, launch(server, "publish_index")) == "SUCCESS"
    (latest, *_) = check_executions(server, "mds_shards", "shard_size", "batch-a")
    assert latest["status"] == "SUCCEEDED" and latest["evaluation"]["success"]
    for check in ("index_consistency", "samples_decode"):
        (latest, *_) = check_executions(server, "mds_index", check)
        assert latest["status"] == "SUCCEEDED", (check, latest)
    assert (server.root / "out" / "index.mds").exists()


def test_the_ui_shows_the_graph_partitions_and_passing_checks(server, screenshots):
    with browser_page(server) as page:
        page.goto(f"{server.url}/asset-groups/mds")
        dismiss_welcome(page)
        for name in ("raw_samples", "selected_samples", "mds_shards", "mds_index"):
            page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(screenshots / "asset-graph.png"))

        page.goto(f"{server.url}/assets/mds_shards?view=partitions")
        page.get_by_text("batch-a").first.wait_for(timeout=30_000)
        page.get_by_text("Materialized (1)").wait_for(timeout=30_000)
        page.get_by_text("batch-a", exact=True).first.click()
        page.get_by_text("shard_table").first.wait_for(timeout=30_000)  # the partition's metadata
        page.screenshot(path=str(screenshots / "mds-shards-partitions.png"))

        page.goto(f"{server.url}/assets/mds_index?view=checks")
        for check in ("index_consistency", "samples_decode"):
            page.get_by_text(check).first.wait_for(timeout=30_000)
        page.get_by_text("Succeeded").first.wait_for(timeout=30_000)
        page.screenshot(path=str(screenshots / "mds-index-checks.png"))


def test_one_partition_is_rechecked_from_the_launchpad_and_execute_all_checks_every_partition(server, screenshots):
    keys = server.graphql(JOB_PARTITIONS, {"job": "check_partition"})["pipelineOrError"]["partitionKeysOrError"]
    assert "batch-a" in keys["partitionKeys"]  # a partitioned job: its launchpad offers a partition picker
    before = {run["runId"] for run in runs(server, pipelineName="check_partition")}
    with browser_page(server) as page:  # Jobs -> check_partition -> Launchpad: choose batch-a, Launch Run
        page.goto(f"{server.url}/locations/mds_assets/jobs/check_partition/playground")
        dismiss_welcome(page)
        page.get_by_placeholder("Partition").click()
        page.get_by_text("batch-a", exact=True).first.click()
        page.get_by_text("partition: batch-a").first.wait_for(timeout=30_000)
        page.screenshot(path=str(screenshots / "check-partition-launchpad.png"))
        page.get_by_role("button", name="Launch Run").click()
        (run_id,) = wait_for(
            lambda: [r["runId"] for r in runs(server, pipelineName="check_partition") if r["runId"] not in before],
            60,
            "the launchpad's check_partition run",
        )
    assert wait_for_run(server, run_id) == "SUCCESS"
    (latest, *_) = check_executions(server, "mds_shards", "shard_size", "batch-a")
    assert (latest["runId"], latest["status"], latest["evaluation"]["success"]) == (run_id, "SUCCEEDED", True)

    run_id = execute_all_checks(server, "mds_shards")  # a partition-less run: no "Cannot access partition_key ..."
    assert wait_for_run(server, run_id) == "SUCCESS"
    (latest, *_) = check_executions(server, "mds_shards", "shard_size", "batch-a")
    assert (latest["runId"], latest["status"]) == (run_id, "SUCCEEDED")  # batch-a re-checked, on batch-a
    (summary,) = [
        e
        for e in check_executions(server, "mds_shards", "shard_size")
        if e["runId"] == run_id and e["partition"] is None
    ]
    assert summary["status"] == "SUCCEEDED" and summary["evaluation"]["description"] == "1 partition checked"

    with browser_page(server) as page:
        page.goto(f"{server.url}/assets/mds_shards?view=checks")
        dismiss_welcome(page)
        page.get_by_text("shard_size").first.wait_for(timeout=30_000)
        page.get_by_text("Succeeded").first.wait_for(timeout=30_000)
        assert page.get_by_role("button", name="Execute all").is_enabled()
        page.screenshot(path=str(screenshots / "mds-shards-checks.png"))


def execute_all_checks(server, asset):
    """Launch a run exactly as the Checks tab's "Execute all" does (Dagster's ExecuteChecksButton.tsx)."""
    node = server.graphql(CHECKS_OF_ASSET, {"asset": {"path": [asset]}})["assetNodeOrError"]
    checks = node["assetChecksOrError"]["checks"]
    common = [name for name in checks[0]["jobNames"] if all(name in check["jobNames"] for check in checks)]
    selector = {
        "repositoryLocationName": "mds_assets",
        "repositoryName": "__repository__",
        "jobName": (common or node["jobNames"])[0],
        "assetSelection": [],
        "assetCheckSelection": [
            {"assetKey": {"path": [asset]}, "name": check["name"]}
            for check in checks
            if check["canExecuteIndividually"] == "CAN_EXECUTE"
        ],
    }
    params = {"mode": "default", "executionMetadata": {}, "runConfigData": "{}", "selector": selector}
    answer = server.graphql(LAUNCH, {"params": params})["launchRun"]
    assert answer["__typename"] == "LaunchRunSuccess", answer
    return answer["run"]["runId"]


def test_a_forged_shard_fails_the_shard_size_check_and_shows_as_failed(server, screenshots):
    with StreamingDatasetWriter(
        str(server.root / "out" / "partitions" / "batch-a"), ["uid"], shard_size_limit=10**6, overwrite=True
    ) as writer:
        writer.write_samples([{"uid": b"x" * 700}, {"uid": b"y" * 700}], use_tqdm=False)
    assert wait_for_run(server, launch(server, "check_partition", "batch-a")) == "FAILURE"  # blocking ERROR
    (latest, *_) = check_executions(server, "mds_shards", "shard_size", "batch-a")
    assert latest["status"] == "FAILED"
    assert (
        latest["evaluation"]["severity"] == "ERROR"
        and "over the 1000-byte limit" in latest["evaluation"]["description"]
    )

    with browser_page(server) as page:
        page.goto(f"{server.url}/assets/mds_shards?view=checks")
        dismiss_welcome(page)
        page.get_by_text("shard_size").first.wait_for(timeout=30_000)
        page.get_by_text("Failed").first.wait_for(timeout=30_000)
        page.screenshot(path=str(screenshots / "mds-shards-check-failed.png"))


class browser_page:
    """A Playwright page in Debian's chromium (no downloaded browser), closed on exit."""

    def __init__(self, server):
        self.server = server

    def __enter__(self):
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, timeout=60_000)
        page = self._browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(30_000)
        return page

    def __exit__(self, *exc):
        self._browser.close()
        self._playwright.stop()


def dismiss_welcome(page):
    """Dagster's UI may open a community dialog on first visit; skip it if it is there."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=10_000)  # the dialog opens late on a busy machine
        skip.click()
    except Exception:  # no dialog this time
        pass
