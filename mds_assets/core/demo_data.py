"""A small, realistic raw dataset made on the fly: captioned images in JSONL batches.

Images are real PNG files (drawn here with zlib, no imaging library), base64 in the JSON, as
image-text datasets usually ship them.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import zlib
from pathlib import Path

SUBJECTS = [
    "a red kite",
    "two cats",
    "a lighthouse",
    "a bowl of ramen",
    "an old tram",
    "a snowy ridge",
    "a market stall",
    "a sleeping dog",
    "a paper boat",
    "a glass of tea",
]
PLACES = ["at dawn", "in the rain", "on a beach", "in a busy street", "under neon lights", "in a quiet park"]


def png(width: int, height: int, rng: random.Random) -> bytes:
    """A width x height RGB PNG with a two-colour gradient."""
    top, bottom = [rng.randrange(256) for _ in range(3)], [rng.randrange(256) for _ in range(3)]
    rows = []
    for y in range(height):
        t = y / max(1, height - 1)
        pixel = bytes(int(a + (b - a) * t) for a, b in zip(top, bottom))
        rows.append(b"\x00" + pixel * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def write_demo_batches(raw_dir: Path, batches: int = 4, records_per_batch: int = 250, seed: int = 0) -> list[Path]:
    """Write `batches` JSONL files of captioned images under `raw_dir`; returns their paths."""
    rng = random.Random(seed)
    raw_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for batch in range(batches):
        path = raw_dir / f"captions-{batch:03d}.jsonl"
        with path.open("w") as out:
            for number in range(records_per_batch):
                width, height = rng.choice([(32, 32), (48, 32), (64, 48)])
                record = {
                    "uid": f"{batch:03d}-{number:06d}",
                    "caption": f"{rng.choice(SUBJECTS)} {rng.choice(PLACES)}",
                    "image": base64.b64encode(png(width, height, rng)).decode(),
                    "width": width,
                    "height": height,
                    "source": "mds-assets demo",
                }
                out.write(json.dumps(record) + "\n")
        paths.append(path)
    return paths
