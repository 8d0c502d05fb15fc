"""One registry of encodings holds together: every field encoding of a selection is a column
encoding of the registry, values round-trip, and the snippet text decodes as `decode` does."""

import base64
import importlib
import io

import pytest
from PIL import Image

from mds_assets.assets.index import how_to_load
from mds_assets.core.selection import ENCODINGS, RecordEncoder, decoders_for, parse_fields
from tests.streaming_reference import encodings_module
from writer.column_encodings import COLUMNS, FIELDS, checked_encodings
from writer.column_encodings import decoders_for as column_decoders


def image(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (2, 2), (1, 2, 3)).save(out, format=kind)
    return out.getvalue()


# A JSON value each field encoding takes, and what reading it back gives.
FIELD_VALUES = {
    "utf8": ("héllo", "héllo"),
    "base64": ("AAEC", b"\x00\x01\x02"),
    "hex": ("ff00", b"\xff\x00"),
    "json": ({"k": [1, None]}, {"k": [1, None]}),
    "int64": (-5, -5),
    "float64": (2.5, 2.5),
    "bytes": (b"\x00raw", b"\x00raw"),
    "jpeg": (base64.b64encode(image("JPEG")).decode(), Image.Image),
    "png": (image("PNG"), Image.Image),
}


def test_the_selection_uses_the_registry_and_every_field_encoding_is_a_column_encoding():
    assert ENCODINGS is FIELDS
    assert set(FIELD_VALUES) == set(FIELDS)
    for name, field in FIELDS.items():
        assert COLUMNS[field.column_encoding] is field.column, name
        assert field.decode is field.column.decode


def test_every_column_encoding_is_one_mosaicml_streaming_knows():
    assert set(COLUMNS) <= encodings_module().get_mds_encodings()


@pytest.mark.parametrize("name", sorted(FIELD_VALUES))
def test_every_field_encoding_round_trips(name):
    value, expected = FIELD_VALUES[name]
    selections = parse_fields([f"f:{name}"])
    sample = RecordEncoder(selections, "b").encode(1, {"f": value})
    decoded = decoders_for(selections)["f"](sample["f"])
    if isinstance(expected, type):
        assert isinstance(decoded, expected) and decoded.size == (2, 2)
    else:
        assert decoded == expected
    assert checked_encodings({"f": FIELDS[name].column_encoding}, ("f",))


@pytest.mark.parametrize("name", sorted(FIELD_VALUES))
def test_the_snippet_text_decodes_as_the_registry_does(name):
    value, _ = FIELD_VALUES[name]
    stored = FIELDS[name].encode(value)
    column = FIELDS[name].column
    namespace = {}
    for module in column.decoder_imports:  # as the snippet's `import` line does
        importlib.import_module(module)
        namespace[module.split(".")[0]] = importlib.import_module(module.split(".")[0])
    from_snippet = eval(column.decoder_source, namespace)(stored)  # noqa: S307 - our own source text
    from_registry = column.decode(stored)
    if isinstance(from_registry, Image.Image):
        assert from_snippet.tobytes() == from_registry.tobytes()
    else:
        assert from_snippet == from_registry
    assert column.decoder_source in how_to_load("/data/ds", parse_fields([f"f:{name}"]))


def test_image_fields_refuse_what_is_not_that_image():
    with pytest.raises(ValueError, match="field 'img': not valid png .*PNG signature"):
        RecordEncoder(parse_fields("img:png"), "b").encode(3, {"img": image("JPEG")})


def test_readers_decode_by_the_registry_but_never_unpickle_unless_allowed():
    encodings = {"a": "pkl", "b": "int16", "c": "bytes", "d": "ndarray"}
    assert set(column_decoders(encodings)) == {"b"}
    assert set(column_decoders(encodings, allow_unsafe=True)) == {"a", "b"}


def test_image_fields_stay_bytes_where_pillow_is_not_installed(monkeypatch, tmp_path):
    import writer.column_encodings as registry
    from writer import MDSDataset, MDSWriter

    real_find_spec = registry.find_spec
    monkeypatch.setattr(registry, "find_spec", lambda name: None if name == "PIL" else real_find_spec(name))
    assert set(decoders_for(parse_fields("img:jpeg,caption"))) == {"caption"}
    with MDSWriter(out=str(tmp_path), columns={"img": "jpeg"}) as writer:
        writer.write({"img": image("JPEG")})
    with pytest.warns(UserWarning, match="column 'img' stays bytes: jpeg decodes to PIL images only when Pillow"):
        assert MDSDataset(str(tmp_path), decoders="auto")[0] == {"img": image("JPEG")}
