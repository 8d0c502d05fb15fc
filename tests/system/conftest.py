from pathlib import Path

import pytest
import s3fs

from .celery_cluster import Cluster
from .cluster import Postgres
from .s3_server import S3Server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/system is in the `system` tier, marked or not, so the fast tier
    (`-m "not system"`) never starts a server."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in item.path.resolve().parents:
            item.add_marker(pytest.mark.system)


SECRET_KEY = "s3cr3t-THAT-must-never-be-printed"
ACCESS_KEY = "AKIAMDSASSETSTEST"


@pytest.fixture
def s3(monkeypatch):
    """A fresh S3 server, with credentials and endpoint only in the standard AWS variables."""
    server = S3Server()
    server.start()
    server.reset()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # an outage fails in seconds, not a minute
    s3fs.S3FileSystem.clear_instance_cache()  # a cached client would keep an old endpoint
    try:
        yield server
    finally:
        server.stop()
        s3fs.S3FileSystem.clear_instance_cache()


from ..mds_assets.conftest import instance  # noqa: E402,F401  (the temporary Dagster instance)


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server for the module's tests (a module that stops it has one of its own)."""
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, postgres):
    """Redis and two Celery workers on the module's PostgreSQL instance (celery_cluster.Cluster)."""
    cluster = Cluster(tmp_path_factory.mktemp("celery"), postgres)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
