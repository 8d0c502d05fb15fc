"""A published dataset says how to read each field: decoders="auto" gives the raw records' values back."""

from mds_assets.build import build
from writer import MDSDataset

from .conftest import record


def test_the_published_dataset_decodes_itself(instance, settings):
    assert build(settings, workers=1, progress=False).ok
    first = MDSDataset(settings.out_url, decoders="auto")[0]
    raw = record(0, 0)
    assert first["uid"] == raw["uid"] and first["text"] == raw["text"] and first["n"] == raw["n"]
    assert first["meta"] == raw["meta"] and isinstance(first["blob"], bytes)
    assert MDSDataset(settings.out_url).manifest().column_encodings == {
        "uid": "str",
        "text": "str",
        "blob": "bytes",
        "n": "int64",
        "meta": "json",
    }
