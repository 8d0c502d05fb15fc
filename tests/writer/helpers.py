"""Small helpers shared by the writer tests: the reference samples and a dataset digest."""

import hashlib
import json
import struct
from pathlib import Path

from writer import MDSDataset


def seed_samples() -> list[dict[str, bytes]]:
    """The 100 samples of the original documentation's example."""
    return [{"uid": f"{ix:06}".encode(), "data": (3 * ix).to_bytes(4, "big"), "unused": b"blah"} for ix in range(100)]


def many_samples(vectors: Path) -> list[dict[str, bytes]]:
    lines = (vectors / "many" / "samples.jsonl").read_text().splitlines()
    return [{key: bytes.fromhex(value) for key, value in json.loads(line).items()} for line in lines]


def digest(url: str, **options) -> str:
    """The vectors README's check: sha256 over (len as int64 LE, value) of every field of every sample."""
    dataset = MDSDataset(url, **options)
    hasher = hashlib.sha256()
    for sample in dataset:
        for field in dataset.fields:
            hasher.update(struct.pack("<q", len(sample[field])))
            hasher.update(sample[field])
    return hasher.hexdigest()


def fail_writing(monkeypatch, failing_name: str, error: OSError | None = None) -> None:
    """Make every write of the file `failing_name` raise (a full disk, by default)."""
    from writer.storage import Storage

    real_write = Storage.write_atomic

    def write(self, name, data):
        if name == failing_name:
            raise error or OSError("disk full")
        return real_write(self, name, data)

    monkeypatch.setattr(Storage, "write_atomic", write)
