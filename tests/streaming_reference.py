"""mosaicml-streaming 0.13.0's MDS writer and `StreamingDataset`, loaded without `import streaming`.

`streaming/__init__.py` imports its vision and text converters, which import torchvision and
transformers: neither has a CPU build here, and the MDS code never uses them. So the packages
`streaming` and `streaming.base` are put into `sys.modules` as bare module objects whose
`__path__` is the installed package's folder; importing a submodule then runs that submodule's
real code from the installed wheel, and only the packages' `__init__` files are skipped.

The reference is the installed distribution (`pip install --no-deps mosaicml-streaming==0.13.0`,
scripts/test.sh); its version is checked so a different one is never taken for it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from importlib import metadata
from pathlib import Path

VERSION = "0.13.0"
_PACKAGES = ("streaming", "streaming.base")


def _bare_packages() -> None:
    if isinstance(sys.modules.get("streaming.base"), types.ModuleType) and hasattr(
        sys.modules["streaming.base"], "__path__"
    ):
        return
    try:
        installed = metadata.version("mosaicml-streaming")
    except metadata.PackageNotFoundError:
        raise ModuleNotFoundError("mosaicml-streaming is not installed (scripts/test.sh installs it)") from None
    if installed != VERSION:
        raise RuntimeError(f"the reference is mosaicml-streaming {VERSION}; {installed} is installed")
    spec = importlib.util.find_spec("streaming")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("mosaicml-streaming is not installed (scripts/test.sh installs it)")
    root = Path(spec.origin).parent
    for name in _PACKAGES:
        folder = root.joinpath(*name.split(".")[1:])
        module = types.ModuleType(name)
        module.__path__ = [str(folder)]
        module.__file__ = str(folder / "__init__.py")
        sys.modules[name] = module
    sys.modules["streaming"].base = sys.modules["streaming.base"]  # type: ignore[attr-defined]


def mds_writer_module() -> types.ModuleType:
    """`streaming.base.format.mds.writer`, as shipped (class `MDSWriter`)."""
    _bare_packages()
    return importlib.import_module("streaming.base.format.mds.writer")


def dataset_module() -> types.ModuleType:
    """`streaming.base.dataset`, as shipped (class `StreamingDataset`)."""
    _bare_packages()
    return importlib.import_module("streaming.base.dataset")


def encodings_module() -> types.ModuleType:
    """`streaming.base.format.mds.encodings`, as shipped."""
    _bare_packages()
    return importlib.import_module("streaming.base.format.mds.encodings")
