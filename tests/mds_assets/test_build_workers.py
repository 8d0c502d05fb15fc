"""`mds-assets build`'s pool workers die with it."""

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from ..commands import MDS_ASSETS, build_arguments
from .conftest import FIELDS, record, write_batch

REPO = Path(__file__).resolve().parents[2]


def test_killing_the_build_kills_its_pool_workers(tmp_path):
    raw = tmp_path / "raw"
    for batch in range(6):
        write_batch(raw, f"b{batch}.jsonl", [dict(record(batch, n), text="x" * 2000) for n in range(4000)])
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "home"), DAGSTER_DISABLE_TELEMETRY="1", PYTHONPATH=str(REPO))
    parent = subprocess.Popen(
        [
            *MDS_ASSETS,
            *build_arguments(str(raw), str(tmp_path / "out"), FIELDS),
            "--workers",
            "2",
            "--quiet",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children = []
    try:
        deadline = time.monotonic() + 60
        while len(children) < 2 and time.monotonic() < deadline and parent.poll() is None:
            try:
                children = psutil.Process(parent.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        assert len(children) >= 2, "the build never started its workers"
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, f"workers outlived their parent: {[p.pid for p in alive]}"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
