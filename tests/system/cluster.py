"""PostgreSQL, Redis and Celery workers on 127.0.0.1, each started in its own process group and
stopped with it; every wait bounded.

Each worker runs in a mount namespace of its own (`unshare -m`) with a private tmpfs over
`$DAGSTER_HOME/storage`: the directory where Dagster's default IO manager would pickle step
outputs is then a different, empty one for the orchestrator and for each worker, so a run
passes only if nothing goes through the orchestrator's disk.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

from .s3_server import free_port

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DEPLOYED_WORKER_YAML = REPO / "deploy" / "celery-worker.yaml"


def worker_yaml(visibility_timeout: int, directory: Path) -> Path:
    """The settings file the workers start with: deploy/celery-worker.yaml itself. A test that
    needs a shorter bound on a lost worker's step gets that file with `visibility_timeout` alone
    replaced (the worker reads `config_source` verbatim, so no environment variable can set it);
    every other setting is the deployed file's."""
    config = yaml.safe_load(DEPLOYED_WORKER_YAML.read_text())
    transport = config["execution"]["config"]["config_source"]["broker_transport_options"]
    if transport["visibility_timeout"] == visibility_timeout:
        return DEPLOYED_WORKER_YAML
    transport["visibility_timeout"] = visibility_timeout
    derived = directory / f"celery-worker-visibility-{visibility_timeout}.yaml"
    derived.write_text(yaml.safe_dump(config))
    return derived


def wait_until(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def stop_group(process: subprocess.Popen | None, first_signal=signal.SIGTERM, timeout: float = 20) -> None:
    """Stop a process started with start_new_session=True, with everything in its group."""
    if process is None:
        return
    try:
        os.killpg(process.pid, first_signal)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def postgres_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed (scripts/test.sh installs Debian's postgresql)")
    return Path(candidates[-1]).parent


class Postgres:
    """A throwaway cluster: initdb into a temporary directory as user postgres, trust auth, 127.0.0.1 only."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mds-pg-"))
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        subprocess.run(
            [
                str(postgres_bin() / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            user="postgres",
            group="postgres",
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.dir,
        )
        self.start_server(timeout)

    def start_server(self, timeout: float = 60) -> None:
        """Start PostgreSQL on the cluster initdb made (again, after `stop_server`: the data stays)."""
        data = self.dir / "data"
        self._log = (self.dir / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(postgres_bin() / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.dir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "max_connections=300",
            ],
            user="postgres",
            group="postgres",
            cwd=self.dir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._ready, timeout, "PostgreSQL accepting connections")

    def stop_server(self) -> None:
        """PostgreSQL down (fast shutdown: connections refused), its data kept for `start_server`."""
        stop_group(self.process, signal.SIGINT)
        self.process = None

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"postgres exited with {self.process.returncode}: {(self.dir / 'postgres.log').read_text()[-2000:]}"
            )
        import psycopg2

        try:
            psycopg2.connect(self.url("postgres"), connect_timeout=2).close()
            return True
        except psycopg2.OperationalError:
            return False

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(self.url("postgres"), connect_timeout=5)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        connection.close()
        return self.url(name)

    def stop(self) -> None:
        stop_group(self.process, signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self._ready, timeout, "Redis answering PING")

    def _ready(self) -> bool:
        import redis

        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.process.returncode}")
        try:
            return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2).ping()
        except redis.exceptions.ConnectionError:
            return False

    def stop(self) -> None:
        stop_group(self.process)


def instance_yaml(postgres_url: str) -> str:
    return f"""\
telemetry:
  enabled: false
storage:
  postgres:
    postgres_url: {postgres_url}
concurrency:
  pools:
    default_limit: 1
"""


class CeleryWorker:
    """`dagster-celery worker start` in its own mount namespace, a private tmpfs over $DAGSTER_HOME/storage."""

    def __init__(
        self, name: str, dagster_home: Path, broker: str, env: dict[str, str], log_dir: Path, visibility_timeout: int
    ) -> None:
        self.name = name
        self.hostname = f"{name}@{socket.gethostname()}"  # what `dagster-celery worker start -n NAME` names it
        self.dagster_home = dagster_home
        self.yaml = worker_yaml(visibility_timeout, log_dir)
        self.log_path = log_dir / f"{name}.log"
        self.env = {
            **os.environ,
            **env,
            "MDS_CELERY_BROKER": broker,  # read by deploy/celery-worker.yaml as {env: ...}
            "MDS_CELERY_BACKEND": broker,
            "DAGSTER_HOME": str(dagster_home),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> None:
        self.launch()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90) -> None:
        wait_until(self._ready, timeout, f"celery worker {self.name} ready", interval=0.5)

    def launch(self) -> None:
        self.log_path.write_bytes(b"")
        script = 'mkdir -p "$1" && mount -t tmpfs -o size=512m mds-private "$1" && shift && exec "$@"'
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
                str(self.dagster_home / "storage"),
                str(VENV_BIN / "dagster-celery"),
                "worker",
                "start",
                "-A",
                "dagster_celery.app",
                "-y",
                str(self.yaml),
                "-n",
                self.name,
                "-l",
                "INFO",
                "--",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
            ],
            env=self.env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"worker {self.name} exited with {self.process.returncode}: {self.log_path.read_text()[-3000:]}"
            )
        return " ready." in self.log_path.read_text(errors="replace")

    def pool_processes(self) -> list[psutil.Process]:
        """The prefork pool's children: the processes that run steps."""
        root = psutil.Process(self.process.pid)
        celery_main = [p for p in root.children(recursive=True) if "celery" in " ".join(p.cmdline()) and p.children()]
        return [child for main in celery_main for child in main.children()]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill_all(self) -> None:
        """The whole worker gone at once, as when its machine dies."""
        stop_group(self.process, signal.SIGKILL, timeout=10)

    def stop(self) -> None:
        stop_group(self.process, signal.SIGTERM, timeout=20)
        if self.process is not None:
            self._log.close()
