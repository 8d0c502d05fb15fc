"""MDS_ALERT_WEBHOOK_URL: checked when the code location loads, and never repeated (it may hold a token)."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from mds_assets import sensors

TOKEN = "XoXbT0kenValue"


@pytest.mark.parametrize(
    "url",
    [f"hooks.slack.com/services/T000/B000/{TOKEN}", f"ftp://hooks.example.com/{TOKEN}", f"https:///{TOKEN}"],
)
def test_the_code_location_refuses_a_webhook_url_it_cannot_post_to_without_repeating_it(url, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import mds_assets.definitions"],
        capture_output=True,
        text=True,
        env={**os.environ, "MDS_ALERT_WEBHOOK_URL": url, "DAGSTER_HOME": str(tmp_path)},
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert "MDS_ALERT_WEBHOOK_URL" in done.stderr and "http:// or https://" in done.stderr, done.stderr
    assert TOKEN not in done.stdout + done.stderr


class _Log:
    """What the sensor's context.log receives."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, message: str) -> None:
        self.lines.append(message)


def test_a_webhook_url_spoilt_after_loading_is_logged_without_its_value(monkeypatch):
    monkeypatch.setenv("MDS_ALERT_WEBHOOK_URL", f"hooks.slack.com/services/T000/B000/{TOKEN}")
    context = SimpleNamespace(log=_Log())
    sensors._post_webhook({"text": "check x failed"}, context)  # no exception: the sensor goes on to its cursor
    assert any("MDS_ALERT_WEBHOOK_URL" in line for line in context.log.lines)
    assert TOKEN not in "".join(context.log.lines)
