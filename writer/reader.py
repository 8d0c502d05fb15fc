"""`MDSDataset`: random access and streaming iteration over an `.mds` dataset at any fsspec URL.

It reads datasets this project writes and datasets the original Composer writer wrote,
including its quirks: an empty shard 0, a gzipped index, and per-sample sizes that wrapped
negative in a too-narrow int8/int16 (repaired here; the original's own reader cannot).
"""

from __future__ import annotations

import bisect
import itertools
import resource
from array import array
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from typing import Any, Literal

from . import format as mds
from .column_encodings import decoders_for
from .compression import COMPRESSION_FILE, DECOMPRESSION_ERRORS, NONE, Compression, scheme_from_file
from .manifest import CHECKSUM_ALGORITHM, MANIFEST_NAME, Manifest, checksum
from .published import index_name
from .storage import Storage

Decoders = dict[str, Callable[[bytes], Any]]
_UNSIGNED = {"b": "B", "h": "H", "i": "I"}


class MDSDataset:
    """`len(ds)`, `ds[i]` (negative too), `for sample in ds` — samples as `{field: bytes or decoded}`.

    Opens either format: a folder whose index is MDS v2's `index.json` opens as a
    `writer.mdsv2_reader.StreamingFormatDataset` (a subclass), the others as Composer's `.mds`."""

    format = "composer"

    def __new__(
        cls,
        url: str,
        decoders: Decoders | Literal["auto"] | None = None,
        storage_options: dict[str, Any] | None = None,
        allow_unsafe_types: bool = False,
    ) -> MDSDataset:
        if cls is MDSDataset:
            from .mdsv2_reader import StreamingFormatDataset, holds_streaming_format

            if holds_streaming_format(Storage(url, storage_options)):
                return super().__new__(StreamingFormatDataset)
        return super().__new__(cls)

    def __init__(
        self,
        url: str,
        decoders: Decoders | Literal["auto"] | None = None,
        storage_options: dict[str, Any] | None = None,
        allow_unsafe_types: bool = False,
    ) -> None:
        """`decoders`: `{field: function(bytes)}`, or `"auto"` to decode each field by the encoding
        its writer recorded in the manifest (`column_encodings`; fields without one stay bytes;
        `pkl` only with `allow_unsafe_types=True`, since unpickling runs code)."""
        self.storage = Storage(url, storage_options)
        self.compression = _read_compression(self.storage)
        self.index = _read_index(self.storage, self.compression)
        self.fields = self.index.fields
        self.sample_sizes, self.repaired_sizes = _repair_sizes(self.index, self.storage.describe(self.index_name))
        self.decoded_as: dict[str, str] = {}  # field -> the recorded encoding it is decoded as ("auto")
        if decoders == "auto":
            manifest = self.manifest()
            self.decoded_as = dict(manifest.column_encodings) if manifest else {}
            decoders = decoders_for(self.decoded_as, allow_unsafe_types)
        self.decoders = _checked_decoders(decoders or {}, self.fields)
        self._shard_starts = [0, *itertools.accumulate(self.index.samples_per_shard)]
        self._shard_offsets = lru_cache(maxsize=4)(self._compute_shard_offsets)
        self._shard_bytes = lru_cache(maxsize=1)(self._read_whole_shard)
        self._checksums: dict[str, tuple[int, str]] | None = None  # from the manifest, read when first needed

    @property
    def index_name(self) -> str:
        return index_name(self.compression)

    def shard_file(self, shard_number: int) -> str:
        return mds.shard_name(shard_number, self.compression.suffix)

    def manifest(self) -> Manifest | None:
        """The integrity manifest, or None for a dataset without one (e.g. written by Composer)."""
        try:  # one request, not a look and then a read: a publish opens every partition's
            data = self.storage.read(MANIFEST_NAME)
        except FileNotFoundError:
            return None
        return Manifest.from_json(data, self.storage.describe(MANIFEST_NAME))

    def __len__(self) -> int:
        return self.index.total_samples

    def __getitem__(self, sample_number: int) -> dict[str, Any]:
        sample_number, shard_number, position = locate_sample(sample_number, len(self), self._shard_starts)
        start = self._shard_offsets(shard_number)[position]
        end = start + self.sample_sizes[sample_number]
        if not self.compression.is_none:  # a compressed shard is read whole (and the last one cached)
            record: bytes | memoryview = memoryview(self._shard_bytes(shard_number))[start:end]
        else:  # only this sample's byte range
            record = self.storage.read_range(self.shard_file(shard_number), start, end)
            if len(record) != end - start:
                raise ValueError(
                    f"{self.storage.describe(self.shard_file(shard_number))}: shard is shorter "
                    f"than the index says (sample {sample_number} ends at byte {end})"
                )
        where = self._where(shard_number, sample_number)
        return self._decoded(mds.decode_record(record, self.fields, where), where)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Stream shard by shard: one read per shard, one shard in memory."""
        for shard_number in range(self.index.num_shards):
            for record, sample_number in self.records_of_shard(shard_number):
                where = self._where(shard_number, sample_number)
                yield self._decoded(mds.decode_record(record, self.fields, where), where)

    def records_of_shard(self, shard_number: int, stored: bytes | None = None) -> Iterator[tuple[memoryview, int]]:
        """The raw records of one shard with their sample numbers, from a single read of it.

        `stored` is the shard file's bytes when the caller has already read them (to checksum them).
        """
        first, last = self._shard_starts[shard_number], self._shard_starts[shard_number + 1]
        if first == last:
            return
        if stored is None:
            stored = self.read_checked_shard(shard_number)
        data = memoryview(self.unpack_shard(shard_number, stored))
        offset = 0
        for sample_number in range(first, last):
            size = self.sample_sizes[sample_number]
            yield data[offset : offset + size], sample_number
            offset += size

    def _read_whole_shard(self, shard_number: int) -> bytes:
        return self.unpack_shard(shard_number, self.read_checked_shard(shard_number))

    def read_checked_shard(self, shard_number: int) -> bytes:
        """A shard file's bytes as stored, checked against the size and CRC-32 the manifest gives
        it (when the dataset has a manifest that lists it): a damaged shard raises, named, rather
        than being decoded. Cheap: the bytes are in memory, and CRC-32 runs at gigabytes a second."""
        name = self.shard_file(shard_number)
        stored = self.storage.read(name)
        expected = self._manifest_checksums().get(name)
        if expected is None:
            return stored
        size, crc = expected
        where = self.storage.describe(name)
        if len(stored) != size:
            held = "shorter" if len(stored) < size else "longer"
            raise ValueError(f"{where}: shard holds {len(stored)} bytes, {held} than the {size} the manifest gives it")
        if checksum(stored) != crc:
            raise ValueError(
                f"{where}: checksum {checksum(stored)} differs from the manifest's {crc}: the shard is damaged"
            )
        return stored

    def _manifest_checksums(self) -> dict[str, tuple[int, str]]:
        """`{shard file: (stored bytes, crc32)}` from the manifest; empty without a usable one
        (another writer's dataset, or a manifest `mds verify` reports as wrong)."""
        if self._checksums is None:
            try:
                manifest = self.manifest()
            except (OSError, ValueError):
                manifest = None
            usable = manifest is not None and manifest.checksum_algorithm == CHECKSUM_ALGORITHM
            shards = manifest.shards if manifest is not None and usable else ()
            self._checksums = {shard.file: (shard.stored_bytes, shard.checksum) for shard in shards}
        return self._checksums

    def unpack_shard(self, shard_number: int, stored: bytes) -> bytes:
        """A shard file's bytes, decompressed and checked against the index's byte count."""
        name = self.shard_file(shard_number)
        expected = self.index.bytes_per_shard[shard_number]
        available = memory_available()
        if not self.compression.is_none and available is not None and expected > available:
            raise ValueError(
                f"{self.storage.describe(name)}: the index gives this shard {expected} bytes, more than the "
                f"{available} bytes of memory available to inflate it into; not inflated"
            )
        # inflates at most one byte more than the index gives the shard
        try:
            data = self.compression.decompress(stored, self.storage.describe(name), expected)
        except MemoryError:
            raise ValueError(
                f"{self.storage.describe(name)}: the index gives this shard {expected} bytes, more than "
                "this process can hold in memory; nothing was read"
            ) from None
        if len(data) != expected:
            if len(data) < expected:
                held = f"holds {len(data)} bytes, shorter than"
            elif not self.compression.is_none:  # inflation stopped one byte past what the index allows
                held = "inflates to more bytes than"
            else:
                held = f"holds {len(data)} bytes, longer than"
            raise ValueError(f"{self.storage.describe(name)}: shard {held} the {expected} the index gives it")
        return data

    def _compute_shard_offsets(self, shard_number: int) -> Sequence[int]:
        first, last = self._shard_starts[shard_number], self._shard_starts[shard_number + 1]
        if self.index.size_format == mds.CONSTANT_SIZE_FORMAT:  # arithmetic, whatever count the index claims
            size = self.index.sample_sizes[first] if last > first else 0
            return range(0, size * (last - first) + 1, size) if size else range(1)
        return array("q", itertools.accumulate(self.sample_sizes[first:last], initial=0))

    def _decoded(self, sample: dict[str, bytes], where: str) -> dict[str, Any]:
        """The sample with its decoders applied; a value that does not decode is a ValueError
        naming the shard, sample and field (whatever the decoder raised: struct.error,
        UnicodeDecodeError, RecursionError on JSON nested too deeply, ...)."""
        for field, decode in self.decoders.items():
            try:
                sample[field] = decode(sample[field])
            except Exception as error:
                encoding = self.decoded_as.get(field)
                raise ValueError(
                    f"{where}, field {field!r}: not decodable{f' as {encoding}' if encoding else ''} "
                    f"({' '.join(str(error).split()) or type(error).__name__})"
                ) from None
        return sample

    def _where(self, shard_number: int, sample_number: int) -> str:
        return f"{self.storage.describe(self.shard_file(shard_number))}, sample {sample_number}"


def _read_compression(storage: Storage) -> Compression:
    try:
        data = storage.read(COMPRESSION_FILE)
    except FileNotFoundError:
        return NONE
    return scheme_from_file(data.decode("utf-8", "replace"), storage.describe(COMPRESSION_FILE))


def _read_index(storage: Storage, compression: Compression) -> mds.Index:
    name = index_name(compression)
    try:
        data = storage.read(name)
    except FileNotFoundError:
        raise FileNotFoundError(f"{storage.describe(name)}: no index, so {storage.url} holds no dataset") from None
    _refuse_shards_not_there(storage, compression, data, storage.describe(name))
    if compression.is_none:
        return mds.decode_index(data, storage.describe(name))
    # Inflated as it is parsed: the magic is checked on the first bytes, and no more is inflated
    # than the index's own counts ask for, so a small file cannot make this allocate much more.
    try:
        with compression.open_stream(data) as stream:
            return mds.decode_index(stream, storage.describe(name))
    except DECOMPRESSION_ERRORS as error:
        raise ValueError(f"{storage.describe(name)}: corrupt {compression.scheme} data ({error})") from None


def memory_available() -> int | None:
    """Bytes this process may still allocate, as far as it can tell (its address-space limit and
    the system's available memory, on Linux); None when unknown. A shard claimed larger is never
    inflated: the attempt could only end in MemoryError, after taking the memory of everything else."""
    limits = []
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return min(limits) if limits else None


MISSING_SHARDS_TOLERATED = 1024  # verify names each missing shard up to this many; beyond, the index is refused


def _refuse_shards_not_there(storage: Storage, compression: Compression, data: bytes, where: str) -> None:
    """An index whose header claims far more shards than there are shard files is refused before
    its per-shard counts are read: they would cost memory by the count claimed, not by what is
    stored (a small gzip index can claim 60 million empty shards). One listing, only for an
    index that claims more than MISSING_SHARDS_TOLERATED shards."""
    try:
        with compression.open_stream(data) as stream:
            head = stream.read(mds.HEADER_SIZE)
    except DECOMPRESSION_ERRORS:
        return  # decoding the index reports it
    claimed = mds.claimed_shard_count(head)
    if claimed is None or claimed <= MISSING_SHARDS_TOLERATED:
        return
    present = sum(1 for name in storage.list_names() if mds.is_shard_file(name))
    if claimed > present + MISSING_SHARDS_TOLERATED:
        raise mds.FormatError(
            f"{where}: header claims {claimed} shards, but only {present} shard files are stored beside it"
        )


def _repair_sizes(index: mds.Index, where: str) -> tuple[Sequence[int], bool]:
    """Undo the original writer's wrapping of sizes into a too-narrow signed type, and confirm it.

    A negative size can only be a wrapped one: reinterpret the stored integers as unsigned,
    then the sizes of each shard must add up to the shard's byte count from the index.
    """
    sizes = index.sample_sizes
    if not isinstance(sizes, array) or sizes.typecode not in _UNSIGNED or not sizes or min(sizes) >= 0:
        return sizes, False
    repaired = array(_UNSIGNED[sizes.typecode], sizes.tobytes())
    start = 0
    for shard_number, (count, shard_bytes) in enumerate(zip(index.samples_per_shard, index.bytes_per_shard)):
        if sum(repaired[start : start + count]) != shard_bytes:
            raise mds.FormatError(
                f"{where}: negative sample sizes that do not add up to shard {shard_number}'s "
                f"{shard_bytes} bytes even when read as unsigned"
            )
        start += count
    return repaired, True


def _checked_decoders(decoders: Decoders, fields: tuple[str, ...]) -> Decoders:
    unknown = sorted(set(decoders) - set(fields))
    if unknown:
        raise KeyError(
            f"decoders for fields the dataset does not have: {', '.join(unknown)} (it has: {', '.join(fields)})"
        )
    return dict(decoders)


def locate_sample(sample_number: int, total: int, shard_starts: Sequence[int]) -> tuple[int, int, int]:
    """(sample number from 0, its shard, its position in that shard) of `ds[sample_number]`,
    negative numbers counting from the end as for a list; TypeError / IndexError otherwise."""
    if not isinstance(sample_number, int):
        raise TypeError(f"sample numbers are ints, not {type(sample_number).__name__}")
    if not -total <= sample_number < total:
        raise IndexError(f"sample {sample_number} out of range for a dataset of {total} samples")
    sample_number %= total
    shard_number = bisect.bisect_right(shard_starts, sample_number) - 1
    return sample_number, shard_number, sample_number - shard_starts[shard_number]
