"""`dagster dev` (webserver + daemon) as users start it, on 127.0.0.1, stopped with all its children."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mds_assets.build import instance_config as users_instance_config  # the dagster.yaml users get

from .s3_server import free_port

REPO = Path(__file__).resolve().parents[2]


class DagsterDev:
    def __init__(
        self, dagster_home: Path, env: dict[str, str], log_path: Path, instance_config: str | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        dagster_home.mkdir(parents=True, exist_ok=True)
        (dagster_home / "dagster.yaml").write_text(instance_config or users_instance_config(dagster_home))
        self._env = {**os.environ, **env, "DAGSTER_HOME": str(dagster_home), "DAGSTER_DISABLE_TELEMETRY": "1"}
        self._log = log_path.open("wb")
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 240) -> None:
        dagster = Path(sys.executable).parent / "dagster"
        self.process = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=REPO,
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole, grpc child included
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {self.process.returncode}")
            if self._location_loaded():
                return
            time.sleep(1)
        raise TimeoutError(f"dagster dev did not load the code location within {timeout} s")

    def stop(self, timeout: float = 30) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # anything of the group still there
            except ProcessLookupError:
                pass
            self._log.close()

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        if answer.get("errors"):
            raise RuntimeError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]

    def _location_loaded(self) -> bool:
        try:
            data = self.graphql(
                "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                "locationOrLoadError { __typename } } } } }"
            )
        except (urllib.error.URLError, ConnectionError, RuntimeError, TimeoutError):
            return False
        entries = data["workspaceOrError"].get("locationEntries", [])
        loaded = [e for e in entries if e["name"] == "mds_assets" and e["loadStatus"] == "LOADED"]
        if loaded and loaded[0]["locationOrLoadError"]["__typename"] != "RepositoryLocation":
            raise RuntimeError(f"the code location failed to load: {loaded[0]}")
        return bool(loaded)
