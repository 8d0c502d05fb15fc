"""Composer's own `.mds` format module (mosaicml 0.10.1), loaded from its PyPI wheel.

`composer/datasets/streaming/format.py` is the code Composer's `StreamingDataset` uses to read
an index and split samples; it needs only numpy. The rest of Composer (torch, object stores)
is not needed to prove that the bytes we write are the bytes it reads, so only that file is
loaded, straight from the wheel (fetched from PyPI once into `.cache/reference/`).
"""

from __future__ import annotations

import subprocess
import sys
import types
import zipfile
from pathlib import Path

WHEEL_VERSION = "0.10.1"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "reference"
MODULE_PATH = "composer/datasets/streaming/format.py"
WORLD_MODULE = "composer.datasets.streaming.world"


def composer_format() -> types.ModuleType:
    """The module, executed as shipped. Its one Composer import, `World` (the torch-based
    distributed-worker description, used only by partitioning code these tests do not call),
    is given a stand-in class for the time of the import."""
    wheel = _wheel()
    source = zipfile.ZipFile(wheel).read(MODULE_PATH).decode()
    module = types.ModuleType("composer_streaming_format")
    module.__file__ = f"{wheel}/{MODULE_PATH}"
    world = types.ModuleType(WORLD_MODULE)
    world.World = type("World", (), {})
    saved = sys.modules.get(WORLD_MODULE)
    sys.modules[WORLD_MODULE] = world
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - the reference implementation
    finally:
        if saved is None:
            sys.modules.pop(WORLD_MODULE, None)
        else:
            sys.modules[WORLD_MODULE] = saved
    return module


def _wheel() -> Path:
    found = sorted(CACHE.glob(f"mosaicml-{WHEEL_VERSION}-*.whl"))
    if not found:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"mosaicml=={WHEEL_VERSION}",
                        "-d", str(CACHE)], check=True, timeout=300)
        found = sorted(CACHE.glob(f"mosaicml-{WHEEL_VERSION}-*.whl"))
    assert found, f"could not fetch mosaicml {WHEEL_VERSION} from PyPI into {CACHE}"
    return found[0]
