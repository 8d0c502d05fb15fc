"""Write the reference datasets of tests/data/vectors/ with Composer 0.10.1's own writer.

    python scripts/regenerate_vectors.py [--out tests/data/vectors]

Each dataset is written by `StreamingDatasetWriter` from `composer/datasets/streaming/writer.py`
of the mosaicml 0.10.1 wheel on PyPI, executed as shipped (loaded by
`tests/writer/composer_reference.py`, which fetches the wheel once into `.cache/reference/`).
The samples are the ones tests/data/vectors/README.md lists: `seed` is computed, `many` is read
from `many/samples.jsonl` (random payloads, kept as the input), `empty` has none. The gzip files
carry a timestamp in their header, so a second run changes their bytes, never their content.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from tests.writer.composer_reference import composer_writer  # noqa: E402

VECTORS = ROOT / "tests" / "data" / "vectors"


def seed_samples() -> list[dict[str, bytes]]:
    """The 100 samples of the original documentation's example (`unused` is not a field)."""
    return [{"uid": f"{ix:06}".encode(), "data": (3 * ix).to_bytes(4, "big"), "unused": b"blah"} for ix in range(100)]


def many_samples(samples_jsonl: Path) -> list[dict[str, bytes]]:
    """One JSON object a line, every value hex-encoded, in write order."""
    lines = samples_jsonl.read_text().splitlines()
    return [{key: bytes.fromhex(value) for key, value in json.loads(line).items()} for line in lines]


def regenerate(out: Path, samples_jsonl: Path) -> None:
    """Write seed/, seed-gz/, many/ (with a copy of its samples.jsonl) and empty/ under `out`."""
    writer_class = composer_writer().StreamingDatasetWriter
    samples_text = samples_jsonl.read_bytes()  # read before many/ (which may hold it) is rewritten
    many = many_samples(samples_jsonl)
    datasets = {
        "seed": (["uid", "data"], {}, seed_samples()),
        "seed-gz": (["uid", "data"], {"compression": "gz"}, seed_samples()),
        "many": (["uid", "payload"], {"shard_size_limit": 4096}, many),
        "empty": (["uid", "data"], {}, []),
    }
    for name, (fields, arguments, samples) in datasets.items():
        folder = out / name
        shutil.rmtree(folder, ignore_errors=True)
        with writer_class(str(folder), fields, **arguments) as writer:
            writer.write_samples(samples, use_tqdm=False)
        if name == "many":
            (folder / "samples.jsonl").write_bytes(samples_text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=VECTORS, help="folder to (re)write (default: %(default)s)")
    parser.add_argument(
        "--samples",
        type=Path,
        default=VECTORS / "many" / "samples.jsonl",
        help="the samples of many/ (default: %(default)s)",
    )
    arguments = parser.parse_args()
    regenerate(arguments.out, arguments.samples)
    print(f"reference datasets written under {arguments.out}")


if __name__ == "__main__":
    main()
