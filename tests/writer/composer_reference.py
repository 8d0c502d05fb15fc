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
WRITER_PATH = "composer/datasets/streaming/writer.py"
WORLD_MODULE = "composer.datasets.streaming.world"
FORMAT_MODULE = "composer.datasets.streaming.format"
DOWNLOAD_MODULE = "composer.datasets.streaming.download"
OBJECT_STORE_MODULE = "composer.utils.object_store.object_store"


def composer_format() -> types.ModuleType:
    """The module, executed as shipped. Its one Composer import, `World` (the torch-based
    distributed-worker description, used only by partitioning code these tests do not call),
    is given a stand-in class for the time of the import."""
    world = _stand_in(WORLD_MODULE, World=type("World", (), {}))
    return _load(MODULE_PATH, "composer_streaming_format", {WORLD_MODULE: world})


def composer_writer() -> types.ModuleType:
    """Composer's `writer.py` (class `StreamingDatasetWriter`), executed as shipped.

    Its Composer imports: `format` is the module above, as shipped; `get_object_store` and
    `ObjectStore` (the torch-era object-store clients, used only when `remote=` is given) are
    stand-ins: a function that refuses and an empty class. numpy and tqdm are the real ones.
    """

    def get_object_store(remote):  # stand-in
        raise NotImplementedError("the reference writer is loaded without Composer's object stores")

    return _load(
        WRITER_PATH,
        "composer_streaming_writer",
        {
            FORMAT_MODULE: composer_format(),
            DOWNLOAD_MODULE: _stand_in(DOWNLOAD_MODULE, get_object_store=get_object_store),
            OBJECT_STORE_MODULE: _stand_in(OBJECT_STORE_MODULE, ObjectStore=type("ObjectStore", (), {})),
        },
    )


def _stand_in(name: str, **attributes: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


def _load(path: str, name: str, imports: dict[str, types.ModuleType]) -> types.ModuleType:
    """Execute one file of the wheel with `imports` in sys.modules for the time of the import only."""
    wheel = _wheel()
    source = zipfile.ZipFile(wheel).read(path).decode()
    module = types.ModuleType(name)
    module.__file__ = f"{wheel}/{path}"
    saved = {key: sys.modules.get(key) for key in imports}
    sys.modules.update(imports)
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)  # the reference implementation
    finally:
        for key, previous in saved.items():
            if previous is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = previous
    return module


def _wheel() -> Path:
    found = sorted(CACHE.glob(f"mosaicml-{WHEEL_VERSION}-*.whl"))
    if not found:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                f"mosaicml=={WHEEL_VERSION}",
                "-d",
                str(CACHE),
            ],
            check=True,
            timeout=300,
        )
        found = sorted(CACHE.glob(f"mosaicml-{WHEEL_VERSION}-*.whl"))
    assert found, f"could not fetch mosaicml {WHEEL_VERSION} from PyPI into {CACHE}"
    return found[0]
