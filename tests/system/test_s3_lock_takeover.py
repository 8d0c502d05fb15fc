"""On S3 the takeover of a dead holder's lock is a PUT conditional on its ETag (`If-Match`):
processes racing through one stale lock in a bucket give exactly one holder."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from moto.s3.responses import S3Response

from writer import MDSDataset
from writer.storage import Storage
from writer.verify import verify

from ..lock_race import SAMPLES, holders_overlapping, race, take_the_lock, write_a_dataset, write_stale_lock
from .s3_server import S3Server

TRIALS = 6


@pytest.fixture(autouse=True)
def conditional_writes_decided_atomically(monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 decides a conditional PUT or DELETE atomically; moto's server checks the condition and
    then writes in two steps of concurrent threads. One lock around each makes it do what S3 does."""
    decided = threading.Lock()

    def atomic(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def serialised(self: S3Response, *args: Any, **kwargs: Any) -> Any:
            with decided:
                return method(self, *args, **kwargs)

        return serialised

    monkeypatch.setattr(S3Response, "put_object", atomic(S3Response.put_object))
    monkeypatch.setattr(S3Response, "delete_object", atomic(S3Response.delete_object))


def test_processes_racing_through_a_stale_s3_lock_give_exactly_one_holder(s3: S3Server) -> None:
    s3.client().create_bucket(Bucket="locks")
    for trial in range(TRIALS):
        url = f"s3://locks/trial{trial}"
        write_stale_lock(url)
        reports = race(take_the_lock, url, racers=8)
        assert "held" in [outcome for outcome, _ in reports], f"trial {trial}: nobody took the stale lock over"
        assert not holders_overlapping(reports), f"trial {trial}: two holders at once: {reports}"
        assert not Storage(url).exists(".mds-lock")


def test_writers_racing_through_a_stale_s3_lock_publish_one_sound_dataset(s3: S3Server) -> None:
    s3.client().create_bucket(Bucket="locks")
    for trial in range(TRIALS // 2):
        url = f"s3://locks/writers{trial}"
        write_stale_lock(url)
        reports = race(write_a_dataset, url, racers=8)
        finished = [detail for outcome, detail in reports if outcome == "finished"]
        assert len(finished) == 1, f"trial {trial}: {len(finished)} writers finished: {reports}"
        assert verify(url).ok
        samples = list(MDSDataset(url))
        assert len(samples) == SAMPLES and {sample["who"] for sample in samples} == {str(finished[0]).encode()}
