"""Taking over the lock of a dead holder is atomic: many processes racing through one stale
lock give exactly one holder, and exactly one writer finishes in the folder."""

from __future__ import annotations

from pathlib import Path

from writer import MDSDataset
from writer.lock import LOCK_NAME
from writer.verify import verify

from ..lock_race import SAMPLES, holders_overlapping, race, take_the_lock, write_a_dataset, write_stale_lock

TRIALS = 12


def test_processes_racing_through_a_stale_lock_give_exactly_one_holder(tmp_path: Path) -> None:
    for trial in range(TRIALS):
        directory = tmp_path / f"trial{trial}"
        write_stale_lock(str(directory))
        reports = race(take_the_lock, str(directory))
        assert "held" in [outcome for outcome, _ in reports], f"trial {trial}: nobody took the stale lock over"
        assert not holders_overlapping(reports), f"trial {trial}: two holders at once: {reports}"
        assert all("locked by a racer" in str(detail) for outcome, detail in reports if outcome == "refused")
        assert not (directory / LOCK_NAME).exists()


def test_concurrent_lockers_get_the_lock_exactly_once(tmp_path: Path) -> None:
    for trial in range(TRIALS // 2):
        reports = race(take_the_lock, str(tmp_path / f"trial{trial}"))
        assert "held" in [outcome for outcome, _ in reports]
        assert not holders_overlapping(reports), f"trial {trial}: two holders at once: {reports}"


def test_writers_racing_through_a_stale_lock_finish_once_and_publish_one_sound_dataset(tmp_path: Path) -> None:
    for trial in range(TRIALS // 2):
        directory = tmp_path / f"trial{trial}"
        write_stale_lock(str(directory))
        reports = race(write_a_dataset, str(directory))
        finished = [detail for outcome, detail in reports if outcome == "finished"]
        assert len(finished) == 1, f"trial {trial}: {len(finished)} writers finished in one folder: {reports}"
        assert verify(str(directory)).ok
        samples = list(MDSDataset(str(directory)))
        assert len(samples) == SAMPLES and {sample["who"] for sample in samples} == {str(finished[0]).encode()}
