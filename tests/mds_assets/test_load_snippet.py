"""The "how to load" snippet on mds_index: it runs, decodes every field, and gives each dataset its own cache folder."""

import re
import sys
import types

import pytest

from mds_assets.assets.index import how_to_load
from mds_assets.core.selection import column_encodings, parse_fields
from writer import StreamingDatasetWriter


def snippet_code(markdown: str) -> str:
    match = re.fullmatch(r"```python\n(.*)\n```", markdown.strip(), re.S)
    assert match, markdown
    return match.group(1)


class FakeStreamingDataset:
    """Stands in for Composer's (which needs torch): records what the snippet passes."""

    calls: list = []

    def __init__(self, **kwargs):
        FakeStreamingDataset.calls.append(kwargs)


@pytest.fixture
def fake_composer(monkeypatch):
    FakeStreamingDataset.calls = []
    for name in ("composer", "composer.datasets"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    streaming = types.ModuleType("composer.datasets.streaming")
    streaming.StreamingDataset = FakeStreamingDataset
    monkeypatch.setitem(sys.modules, "composer.datasets.streaming", streaming)
    return FakeStreamingDataset.calls


@pytest.mark.parametrize(
    "spec", ["uid", "uid,text,blob:base64,n:int64,x:float64,meta:json", "img:bytes,h:hex", "n:int64,x:float64"]
)
def test_the_load_snippet_runs_and_decodes_every_field(tmp_path, spec, fake_composer):
    selections = parse_fields(spec)
    values = {
        "utf8": ("héllo", "héllo".encode()),
        "base64": (b"\x00\x01", b"\x00\x01"),
        "hex": (b"\xff", b"\xff"),
        "bytes": (b"raw", b"raw"),
        "json": ({"a": [1]}, b'{"a":[1]}'),
        "int64": (-5, (-5).to_bytes(8, "little", signed=True)),
        "float64": (2.5, b"\x00" * 6 + b"\x04\x40"),
    }
    url = str(tmp_path / "ds")
    fields = [s.name for s in selections]
    with StreamingDatasetWriter(url, fields, 1000, column_encodings=column_encodings(selections)) as writer:
        writer.write_sample({s.name: values[s.encoding][1] for s in selections})
    code = snippet_code(how_to_load(url, selections))
    imported = {m.strip() for line in re.findall(r"(?m)^import (.*)$", code) for m in line.split(",")}
    assert imported == {
        m
        for m, encoding in (("struct", "float64"), ("json", "json"))
        if any(s.encoding == encoding for s in selections)
    }
    namespace = {}
    exec(compile(code, "<how_to_load>", "exec"), namespace)
    (call,) = fake_composer
    assert call["remote"] == url and set(call["decoders"]) == {s.name for s in selections}
    assert namespace["dataset"][0] == {s.name: values[s.encoding][0] for s in selections}
    assert {name: decode(values[s.encoding][1]) for (name, decode), s in zip(call["decoders"].items(), selections)} == {
        s.name: values[s.encoding][0] for s in selections
    }


def test_two_datasets_get_two_cache_folders(fake_composer, tmp_path):
    selections = parse_fields("uid")
    folders = set()
    for url in ("s3://bucket/a", "s3://bucket/b", "/data/a"):
        code = snippet_code(how_to_load(url, selections)).split("# or without Composer")[0]
        exec(compile(code, "<how_to_load>", "exec"), {})
        folders.add(fake_composer[-1]["local"])
    assert len(folders) == 3
    assert snippet_code(how_to_load("s3://bucket/a", selections)) == snippet_code(
        how_to_load("s3://bucket/a", selections)
    )
    assert "rebuil" in how_to_load("s3://bucket/a", selections)  # the comment on emptying it after a rebuild
