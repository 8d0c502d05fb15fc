"""`MDSDataset` and `mds head | inspect | verify` read MDS v2 as well as Composer's format."""

import io
import json

import pytest
from PIL import Image

from tests.streaming_reference import mds_writer_module
from writer import MDSDataset, MDSWriter
from writer.cli import main
from writer.mdsv2_format import FormatError

COLUMNS = {"text": "str", "n": "int64", "x": "float64", "meta": "json", "blob": "bytes", "small": "int8"}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (3, 2), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


def rows(count):
    return [
        {"text": f"sample {n}", "n": n, "x": n / 2, "meta": {"n": [n]}, "blob": bytes([n % 256]) * 3, "small": -n % 100}
        for n in range(count)
    ]


def write(url, samples, columns=COLUMNS, **options):
    with MDSWriter(out=url, columns=columns, **options) as writer:
        for sample in samples:
            writer.write(sample)


@pytest.mark.parametrize("compression", [None, "zstd", "gz"])
def test_auto_decoders_read_back_every_sample(tmp_path, compression):
    written = rows(60)
    write(str(tmp_path), written, compression=compression, size_limit=500)
    dataset = MDSDataset(str(tmp_path), decoders="auto")
    assert dataset.format == "streaming"
    assert len(dataset) == 60
    assert list(dataset) == written
    assert [dataset[n] for n in (0, 17, -1)] == [written[0], written[17], written[-1]]
    assert MDSDataset(str(tmp_path))[1]["n"] == (1).to_bytes(8, "little")  # no decoders: bytes


@pytest.mark.parametrize("compression", [None, "gz", "br", "snappy"])
def test_a_dataset_written_by_mosaicml_streaming_reads_the_same_and_verifies(tmp_path, compression):
    written = rows(30)
    with mds_writer_module().MDSWriter(
        out=str(tmp_path), columns=COLUMNS, size_limit=400, hashes=["sha1", "xxh64"], compression=compression
    ) as writer:
        for sample in written:
            writer.write(sample)
    assert list(MDSDataset(str(tmp_path), decoders="auto")) == written
    assert main(["verify", "--quiet", str(tmp_path)]) == 0


def test_images_decode_to_pil_and_pickles_only_when_allowed(tmp_path):
    write(str(tmp_path), [{"image": png(), "obj": {"a": 1}}], columns={"image": "png", "obj": "pkl"})
    with pytest.warns(UserWarning, match="column 'obj' stays bytes: pkl is decoded only with allow_unsafe_types"):
        sample = MDSDataset(str(tmp_path), decoders="auto")[0]
    assert isinstance(sample["image"], Image.Image) and sample["image"].size == (3, 2)
    assert isinstance(sample["obj"], bytes)
    assert MDSDataset(str(tmp_path), decoders="auto", allow_unsafe_types=True)[0]["obj"] == {"a": 1}


def test_mds_head_shows_an_image_by_its_format_and_size(tmp_path, capsys):
    write(str(tmp_path), [{"image": png()}], columns={"image": "png"})
    assert main(["head", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == {"sample": 0, "image": "<PNG 3x2 RGB>"}


def test_an_index_pointing_outside_the_dataset_is_refused(tmp_path):
    write(str(tmp_path / "ds"), rows(2))
    index = json.loads((tmp_path / "ds" / "index.json").read_text())
    index["shards"][0]["raw_data"]["basename"] = "../elsewhere/shard.00000.mds"
    (tmp_path / "ds" / "index.json").write_text(json.dumps(index))
    with pytest.raises(FormatError, match="shard 0, raw_data: basename '../elsewhere/shard.00000.mds' is not"):
        MDSDataset(str(tmp_path / "ds"))


def test_shards_in_subfolders_are_read_where_the_index_says(tmp_path):
    """An index over sub-datasets (as S's merge_index writes) names each shard by its relative path."""
    write(str(tmp_path / "parts" / "a"), rows(3), hashes=["sha1"])
    index = json.loads((tmp_path / "parts" / "a" / "index.json").read_text())
    for shard in index["shards"]:
        shard["raw_data"]["basename"] = "parts/a/" + shard["raw_data"]["basename"]
    (tmp_path / "index.json").write_text(json.dumps(index))
    assert list(MDSDataset(str(tmp_path), decoders="auto")) == rows(3)
    assert main(["verify", "--quiet", str(tmp_path)]) == 0


def test_mds_head_and_inspect_show_the_columns(tmp_path, capsys):
    write(str(tmp_path), rows(3), compression="zstd", hashes=["sha1", "xxh3_64"])
    assert main(["head", "-n", "2", str(tmp_path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[1] == {"sample": 1, **rows(2)[1], "blob": "0x010101"}
    assert main(["inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "format:       MDS v2 (mosaicml-streaming, index.json)" in out
    assert "columns:      blob:bytes, meta:json, n:int64, small:int8, text:str, x:float64" in out
    assert "compression:  zstd" in out and "hashes:       sha1, xxh3_64" in out
    assert "shard.00000.mds.zstd" in out


def test_mds_verify_checks_the_hashes_the_index_records(tmp_path, capsys):
    write(str(tmp_path), rows(40), hashes=["sha1", "xxh3_64"], size_limit=600)
    assert main(["verify", "--quiet", str(tmp_path)]) == 0
    assert "checked: hashes: sha1, xxh3_64 of every shard file" in capsys.readouterr().out

    shard = tmp_path / "shard.00002.mds"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF  # a sample's last byte: the structure stays sound, only the hashes can tell
    shard.write_bytes(bytes(data))
    assert main(["verify", "--quiet", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert f"problem: {shard}: sha1 " in out and "differs from the index's" in out
    assert f"problem: {shard}: xxh3_64 " in out


def test_mds_verify_finds_a_missing_shard_and_broken_structure_without_hashes(tmp_path, capsys):
    write(str(tmp_path), rows(40), compression="zstd", size_limit=600)
    (tmp_path / "shard.00001.mds.zstd").unlink()
    raw = tmp_path / "shard.00000.mds.zstd"
    raw.write_bytes(raw.read_bytes()[:-3])
    assert main(["verify", "--quiet", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"problem: {tmp_path / 'shard.00001.mds.zstd'}: missing" in out
    assert f"problem: {raw}: " in out and "bytes stored, the index says" in out
    assert "note: the index records no hashes" in out


@pytest.mark.parametrize("compression", [None, "zstd"])
def test_any_fsspec_url_holds_the_same_dataset(tmp_path, compression):
    """On an object store (memory:// here) each file is one PUT; the bytes are those of a local disk."""
    url = f"memory://mdsv2-{tmp_path.name}-{compression}/ds"
    write(url, rows(50), compression=compression, size_limit=700, hashes=["sha256"])
    write(str(tmp_path), rows(50), compression=compression, size_limit=700, hashes=["sha256"])
    assert list(MDSDataset(url, decoders="auto")) == rows(50)
    local = MDSDataset(str(tmp_path))
    assert MDSDataset(url).storage.read("index.json") == local.storage.read("index.json")
    assert main(["verify", "--quiet", url]) == 0
