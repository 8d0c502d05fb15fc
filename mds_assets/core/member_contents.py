"""What each raw file of a partition contributed, as written: its samples, their bytes and a CRC-32
of them, kept in the partition's stamp (`contents`).

A file renamed (same records, new name) lands in a group of its new name's neighbours, so the
partition that held it under its old name holds the same samples as part of another partition,
never as a whole one: only a comparison file by file finds it (`core.orphans`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from zlib_ng import zlib_ng  # zlib's CRC-32, several times faster (as writer.compression's)

from .grouping import RawGroup, RecordPlace
from .stamps import CONTENTS  # the stamp's key: {file name: [samples, bytes, crc32]}


class MemberContents:
    """Counts and checksums each member's encoded samples as they pass to the writer."""

    def __init__(self, group: RawGroup) -> None:
        self._first = group.members[0].name
        self.by_name: dict[str, list[int]] = {}

    def counted(self, encode: Callable[[int, Mapping[str, Any]], dict[str, bytes]]) -> Callable[..., dict[str, bytes]]:
        """`encode`, each sample it returns counted under the file its record came from."""

        def encode_and_count(line: int, record: Mapping[str, Any]) -> dict[str, bytes]:
            sample = encode(line, record)
            entry = self.by_name.setdefault(line.batch if isinstance(line, RecordPlace) else self._first, [0, 0, 0])
            crc = entry[2]
            for value in sample.values():
                crc = zlib_ng.crc32(value, crc)
                entry[1] += len(value)
            entry[0] += 1
            entry[2] = crc
            return sample

        return encode_and_count


def stamp_contents(stamp: dict[str, Any] | None) -> dict[str, tuple[int, int, int]]:
    """{file name: (samples, bytes, crc32)} of the files with samples, as a stamp records them
    (none for a stamp written without them)."""
    contents = (stamp or {}).get(CONTENTS)
    if not isinstance(contents, dict):
        return {}
    found = {}
    for name, entry in contents.items():
        if isinstance(entry, list) and len(entry) == 3 and all(isinstance(n, int) for n in entry) and entry[0] > 0:
            found[str(name)] = (entry[0], entry[1], entry[2])
    return found
