"""Credentials never reach run config, metadata, event logs or output: storage options that look
like credentials are refused, and URL passwords are shown and stored as `***`."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mds_assets.resources import MDSSettings
from writer import MDSDataset
from writer.secrets import redact, remember_password, with_password

from ..commands import MDS_ASSETS, build_arguments
from .conftest import FIELDS, record, write_batch

SECRET = "Sup3rS3cretValue"
PASSWORD = "Pa55wordValue"


def _everything_stored(*folders: Path) -> bytes:
    """Every byte under the folders (Dagster's SQLite run and event log databases included)."""
    return b"".join(path.read_bytes() for folder in folders for path in sorted(folder.rglob("*")) if path.is_file())


def _build(home: Path, *arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("MDS_URL_PASSWORDS", None)
    return subprocess.run(
        [*MDS_ASSETS, *arguments, "--quiet", "--workers", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    "options",
    [
        {"key": "AKIAEXAMPLE", "secret": SECRET},
        {"client_kwargs": {"aws_secret_access_key": SECRET}},
        {"account_key": SECRET},
        {"sas_token": SECRET},
        {"password": SECRET},
    ],
)
def test_storage_options_holding_credentials_are_refused_and_stored_nowhere(raw_dir, tmp_path, options):
    home = tmp_path / "home"
    arguments = build_arguments(raw_dir, tmp_path / "out", FIELDS)
    done = _build(home, *arguments, "--storage-options", json.dumps(options), cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "looks like a credential" in output and "AWS_SECRET_ACCESS_KEY" in output and "EnvVar" in output, output
    assert SECRET not in output and "Traceback" not in output, output
    stored = _everything_stored(home, tmp_path / "out") if home.exists() else b""
    assert SECRET.encode() not in stored


def test_settings_built_in_code_refuse_credentials_in_storage_options(tmp_path):
    with pytest.raises(ValueError, match="looks like a credential") as raised:
        MDSSettings(
            raw_url=str(tmp_path / "raw"),
            out_url=str(tmp_path / "out"),
            fields=["uid"],
            storage_options={"anon": False, "client_kwargs": {"aws_session_token": SECRET}},
        )
    assert SECRET not in str(raised.value)


def test_storage_options_without_credentials_are_accepted(tmp_path):
    settings = MDSSettings(
        raw_url=str(tmp_path / "raw"),
        out_url=str(tmp_path / "out"),
        fields=["uid"],
        storage_options={"anon": True, "token": "anon", "client_kwargs": {"region_name": "eu-west-1"}},
    )
    assert settings.fsspec_options() == {"anon": True, "token": "anon", "client_kwargs": {"region_name": "eu-west-1"}}


# -- passwords in URLs ----------------------------------------------------------------------


def test_redact_hides_the_password_of_every_url_in_a_text():
    text = "raw URL http://user:Pa55@host:8080/raw/ and s3://k:s%2Fx@b/p, not http://host/x nor user:pw"
    assert redact(text) == "raw URL http://user:***@host:8080/raw/ and s3://k:***@b/p, not http://host/x nor user:pw"


def test_a_remembered_password_is_given_back_only_to_its_account(monkeypatch):
    monkeypatch.delenv("MDS_URL_PASSWORDS", raising=False)
    shown = remember_password("http://user:Pa55@host:8080/raw/")
    assert shown == "http://user:***@host:8080/raw/"
    assert with_password("http://user:***@host:8080/raw/a.jsonl") == "http://user:Pa55@host:8080/raw/a.jsonl"
    assert with_password("http://other:***@host:8080/raw/") == "http://other:***@host:8080/raw/"
    assert with_password("http://host:8080/raw/") == "http://host:8080/raw/"


class _BasicAuthFiles(http.server.SimpleHTTPRequestHandler):
    """Serves a folder (with directory listings) to one user:password only."""

    expected = "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="raw"')
            self.end_headers()
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        self.do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def password_server(tmp_path) -> Iterator[tuple[str, Path]]:
    served = tmp_path / "served"
    write_batch(served / "raw", "batch-0.jsonl", [record(0, n) for n in range(20)])
    write_batch(served / "raw", "batch-1.jsonl", [record(1, n) for n in range(20)])
    handler = functools.partial(_BasicAuthFiles, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://user:{PASSWORD}@127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_a_password_in_the_raw_url_reaches_the_data_and_is_stored_nowhere(password_server, tmp_path):
    base, _ = password_server
    home, out = tmp_path / "home", tmp_path / "out"
    done = _build(home, *build_arguments(f"{base}/raw/", out, ["uid", "text"]), cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert len(MDSDataset(str(out))) == 40  # the run reached the data
    assert PASSWORD not in output
    stored = _everything_stored(home, out)
    assert PASSWORD.encode() not in stored
    assert b"user:***@127.0.0.1" in stored  # run config and raw_samples' metadata show the redacted URL


def test_a_missing_raw_url_with_a_password_is_named_without_it(password_server, tmp_path):
    base, _ = password_server
    done = _build(tmp_path / "home", *build_arguments(f"{base}/nothing-here/", tmp_path / "out", "uid"), cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "does not exist" in output and "user:***@127.0.0.1" in output, output
    assert PASSWORD not in output and "Traceback" not in output, output


def test_python_sees_the_redacted_url_in_settings(monkeypatch, tmp_path):
    monkeypatch.delenv("MDS_URL_PASSWORDS", raising=False)
    settings = MDSSettings(raw_url=f"http://user:{PASSWORD}@host/raw/", out_url=str(tmp_path / "out"), fields=["u"])
    assert settings.raw_url == "http://user:***@host/raw/"
    assert PASSWORD not in json.dumps(settings.model_dump())
    assert sys.modules["writer.secrets"].with_password(settings.raw_url) == f"http://user:{PASSWORD}@host/raw/"
