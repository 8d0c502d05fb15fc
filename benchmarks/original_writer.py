"""A baseline that writes the way the original Composer writer does, for ratios in the same run.

Per sample: a numpy array of sizes and a bytes object kept in a list; per shard: one join and
a serial gzip on the calling thread. Only what the benchmark needs (no index edge cases).
"""

from __future__ import annotations

import gzip
import os

import numpy as np


class OriginalStyleWriter:
    def __init__(
        self, dirname: str, fields: list[str], shard_size_limit: int = 1 << 24, compression: str | None = None
    ) -> None:
        self.dirname, self.fields, self.shard_size_limit = dirname, fields, shard_size_limit
        self.level = None if compression is None else int((compression + ":6").split(":")[1])
        self.new_samples: list[bytes] = []
        self.new_shard_size = 0
        self.samples_per_shard: list[int] = []
        self.bytes_per_sample: list[int] = []
        os.makedirs(dirname, exist_ok=True)

    def _encode_sample(self, sample: dict[str, bytes]) -> bytes:
        values = [sample[field] for field in self.fields]
        sizes = np.array([len(value) for value in values], np.int64)
        return sizes.tobytes() + b"".join(values)

    def write_sample(self, sample: dict[str, bytes]) -> None:
        new_bytes = self._encode_sample(sample)
        if self.shard_size_limit < self.new_shard_size + len(new_bytes):
            self._flush_shard()
        self.new_samples.append(new_bytes)
        self.new_shard_size += len(new_bytes)

    def write_samples(self, samples, use_tqdm: bool = True, total: int | None = None) -> None:
        for sample in samples:
            self.write_sample(sample)

    def _flush_shard(self) -> None:
        name = os.path.join(self.dirname, f"{len(self.samples_per_shard):06d}.mds")
        data = b"".join(self.new_samples)
        if self.level is None:
            with open(name, "wb") as out:
                out.write(data)
        else:
            with gzip.open(name + ".gz", "wb", compresslevel=self.level) as out:
                out.write(data)
        self.samples_per_shard.append(len(self.new_samples))
        self.bytes_per_sample.extend(len(sample) for sample in self.new_samples)
        self.new_samples, self.new_shard_size = [], 0

    def finish(self) -> None:
        self._flush_shard()
        sizes = np.array(self.bytes_per_sample, np.int64)
        with open(os.path.join(self.dirname, "index.mds"), "wb") as out:
            out.write(np.array(self.samples_per_shard, np.int64).tobytes() + sizes.tobytes())
