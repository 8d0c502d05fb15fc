"""The shard hashes an MDS v2 index may record, by mosaicml-streaming's names.

The same set S offers: every algorithm `hashlib` has a constructor for (`sha1`, `sha256`,
`md5`, `blake2b`, ...; not the variable-length `shake_*`) and every one of `xxhash`
(`xxh3_64`, `xxh128`, ...). Values are hex digests, as S writes and checks them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import xxhash


def _collect() -> dict[str, Callable[..., Any]]:
    algorithms: dict[str, Callable[..., Any]] = {
        name: getattr(hashlib, name)
        for name in sorted(hashlib.algorithms_available)
        if hasattr(hashlib, name) and not name.startswith("shake_")
    }
    algorithms.update({name: getattr(xxhash, name) for name in sorted(xxhash.algorithms_available)})
    return algorithms


HASHES = _collect()


def checked_hashes(hashes: Sequence[str] | None) -> list[str]:
    """S's rule: known names, unique, in sorted order (the order the index lists them in)."""
    names = list(hashes or [])
    for name in names:
        if name not in HASHES:
            raise ValueError(f"unknown hash {name!r}; known: {', '.join(HASHES)}")
    if names != sorted(set(names)):
        raise ValueError(f"hashes must be unique and in sorted order, got {names}")
    return names


def hasher(algorithm: str) -> Any:
    """A new hash object (`update(data)`, `hexdigest()`) of this algorithm."""
    return HASHES[algorithm]()


def hex_digest(algorithm: str, data: bytes) -> str:
    return str(HASHES[algorithm](data).hexdigest())
