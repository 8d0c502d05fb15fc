"""Reading MDS v2 (mosaicml-streaming's `index.json` + `shard.NNNNN.mds[.ext]`) at any fsspec URL.

`MDSDataset(url)` opens a folder of either format; a folder whose index is `index.json` opens
as a `StreamingFormatDataset`, with the same `len`, `ds[i]` and iteration. Values are bytes by
default; `decoders="auto"` decodes each column by the encoding its index records (see
`writer.column_encodings`: `pkl` only with `allow_unsafe_types=True`, images only with Pillow).
Shard basenames may name subfolders (an index over sub-datasets, as S's `merge_index` writes),
never a path outside the dataset's folder.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, Literal

from . import mdsv2_format as v2
from .column_encodings import decoders_for, undecoded_reasons
from .mdsv2_compression import decompressor
from .reader import MDSDataset, locate_sample
from .storage import Storage

Decoders = dict[str, Callable[[bytes], Any]]


def holds_streaming_format(storage: Storage) -> bool:
    """True when the folder's index is MDS v2's `index.json` (and no v1 `index.mds` is there)."""
    names = storage.list_names()
    return v2.INDEX_NAME in names and not any(name.startswith("index.mds") for name in names)


class StreamingFormatDataset(MDSDataset):
    """An MDS v2 dataset: `len(ds)`, `ds[i]` (negative too), `for sample in ds`."""

    format = "streaming"

    def __init__(
        self,
        url: str,
        decoders: Decoders | Literal["auto"] | None = None,
        storage_options: dict[str, Any] | None = None,
        allow_unsafe_types: bool = False,
    ) -> None:
        self.storage = Storage(url, storage_options)
        self.streaming_index = read_index(self.storage)
        self.columns = self.streaming_index.columns  # {name: encoding}
        self.fields = tuple(self.columns)
        if decoders == "auto":
            for field, reason in undecoded_reasons(self.columns, allow_unsafe_types).items():
                warnings.warn(f"column {field!r} stays bytes: {reason}", stacklevel=2)
            decoders = decoders_for(self.columns, allow_unsafe_types)
        self.decoders = _checked_decoders(decoders or {}, self.fields)
        self._shard_starts = [0, *itertools.accumulate(shard.samples for shard in self.streaming_index.shards)]
        self._raw_shard = lru_cache(maxsize=1)(self.read_raw_shard)

    @property
    def index_name(self) -> str:
        return v2.INDEX_NAME

    def shard_file(self, shard_number: int) -> str:
        return self.streaming_index.shards[shard_number].stored.basename

    def manifest(self) -> None:
        """MDS v2 keeps sizes and hashes in its index: there is no separate manifest."""
        return None

    def __len__(self) -> int:
        return self.streaming_index.total_samples

    def __getitem__(self, sample_number: int) -> dict[str, Any]:
        sample_number, shard_number, position = locate_sample(sample_number, len(self), self._shard_starts)
        entry = self.streaming_index.shards[shard_number]
        data: bytes | memoryview
        if entry.zip_data is None:  # only the two offsets and the sample's bytes
            data = self._read_uncompressed_sample(shard_number, position)
        else:
            shard = self._raw_shard(shard_number)
            offsets = v2.sample_offsets(shard, entry, self._shard_where(shard_number))
            data = memoryview(shard)[offsets[position] : offsets[position + 1]]
        return self._sample(data, shard_number, sample_number)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Stream shard by shard: one read per shard, one shard in memory."""
        for shard_number, entry in enumerate(self.streaming_index.shards):
            if not entry.samples:
                continue
            shard = memoryview(self.read_raw_shard(shard_number))
            offsets = v2.sample_offsets(shard, entry, self._shard_where(shard_number))
            first = self._shard_starts[shard_number]
            for position in range(entry.samples):
                data = shard[offsets[position] : offsets[position + 1]]
                yield self._sample(data, shard_number, first + position)

    def read_raw_shard(self, shard_number: int, stored: bytes | None = None) -> bytes:
        """A shard's uncompressed bytes, checked against the index's byte counts (`stored`: the
        file's bytes when the caller has read them already)."""
        entry = self.streaming_index.shards[shard_number]
        where = self._shard_where(shard_number)
        if stored is None:
            stored = self.storage.read(entry.stored.basename)
        if len(stored) != entry.stored.bytes:
            raise v2.FormatError(f"{where}: {len(stored)} bytes stored, the index says {entry.stored.bytes}")
        if entry.zip_data is None:
            return stored
        family = entry.zip_data.basename.rsplit(".", 1)[-1]
        decompress = decompressor(family, where)  # an unknown family, or its package missing: said so
        try:
            raw = decompress(stored)
        except Exception as error:
            raise v2.FormatError(f"{where}: corrupt {family} data ({type(error).__name__}: {error})") from None
        if len(raw) != entry.raw_data.bytes:
            raise v2.FormatError(f"{where}: inflates to {len(raw)} bytes, the index says {entry.raw_data.bytes}")
        return raw

    def _read_uncompressed_sample(self, shard_number: int, position: int) -> bytes:
        entry = self.streaming_index.shards[shard_number]
        name, where = entry.raw_data.basename, self._shard_where(shard_number)
        pair = self.storage.read_range(name, 4 + 4 * position, 12 + 4 * position)
        if len(pair) != 8:
            raise v2.FormatError(f"{where}: too short for the offsets of sample {position} of the shard")
        start, end = int.from_bytes(pair[:4], "little"), int.from_bytes(pair[4:], "little")
        if not start <= end <= entry.raw_data.bytes:
            raise v2.FormatError(f"{where}: sample {position} of the shard has offsets {start}..{end} outside it")
        data = self.storage.read_range(name, start, end)
        if len(data) != end - start:
            raise v2.FormatError(f"{where}: shorter than the index says (sample {position} ends at byte {end})")
        return data

    def _sample(self, data: bytes | memoryview, shard_number: int, sample_number: int) -> dict[str, Any]:
        entry = self.streaming_index.shards[shard_number]
        where = f"{self._shard_where(shard_number)}, sample {sample_number}"
        values = v2.split_sample(data, entry.column_sizes, where)
        sample: dict[str, Any] = {}
        for field, value in zip(self.fields, values):
            decode = self.decoders.get(field)
            sample[field] = bytes(value) if decode is None else decode(bytes(value))
        return sample

    def _shard_where(self, shard_number: int) -> str:
        return self.storage.describe(self.shard_file(shard_number))


def read_index(storage: Storage) -> v2.Index:
    if not storage.exists(v2.INDEX_NAME):
        raise FileNotFoundError(f"{storage.describe(v2.INDEX_NAME)}: no index, so {storage.url} holds no dataset")
    return v2.decode_index(storage.read(v2.INDEX_NAME), storage.describe(v2.INDEX_NAME))


def _checked_decoders(decoders: Decoders, fields: tuple[str, ...]) -> Decoders:
    unknown = sorted(set(decoders) - set(fields))
    if unknown:
        raise KeyError(
            f"decoders for fields the dataset does not have: {', '.join(unknown)} (it has: {', '.join(fields)})"
        )
    return dict(decoders)
