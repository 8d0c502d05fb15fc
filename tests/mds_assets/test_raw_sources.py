"""Raw batches: JSONL, gzipped JSONL and ImageFolder trees, with safe partition keys."""

import gzip
import unicodedata

import pytest

from mds_assets.core.layout import partition_url
from mds_assets.core.raw_sources import RawDataError, list_batches, partition_key_for_batch, read_records


def test_jsonl_gz_and_file_tree_batches_are_listed_and_read(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"x": 1}\n\n{"x": 2}\n')
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(b'{"x": 3}\n'))
    (tmp_path / "c" / "cats").mkdir(parents=True)
    (tmp_path / "c" / "cats" / "1.png").write_bytes(b"\x89PNG")
    (tmp_path / "c" / "dogs").mkdir()
    (tmp_path / "c" / "dogs" / "2.png").write_bytes(b"woof")
    (tmp_path / "notes.txt").write_text("not a batch")
    batches = list_batches(str(tmp_path))
    assert [(b.partition_key, b.layout) for b in batches] == [("a", "jsonl"), ("b", "jsonl"), ("c", "filetree")]
    assert list(read_records(batches[0])) == [(1, {"x": 1}), (3, {"x": 2})]
    assert list(read_records(batches[1])) == [(1, {"x": 3})]
    assert list(read_records(batches[2])) == [
        (1, {"path": "cats/1.png", "label": "cats", "content": b"\x89PNG"}),
        (2, {"path": "dogs/2.png", "label": "dogs", "content": b"woof"}),
    ]


def test_invalid_json_names_batch_and_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"x": 1}\n{"x": \n')
    with pytest.raises(RawDataError, match="batch bad.jsonl, line 2: not valid JSON"):
        list(read_records(list_batches(str(tmp_path))[0]))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"x": 1,}', "trailing comma is not allowed at column 8"),
        ('{"x": ', "unexpected end of data at the line's end"),
    ],
)
def test_invalid_json_says_where_in_its_line_with_one_line_number(tmp_path, line, reason):
    """The parser's own position counts lines of the one line it was given: only its column is news."""
    (tmp_path / "bad.jsonl").write_text('{"x": 1}\n' + line + "\n")
    with pytest.raises(RawDataError) as failure:
        list(read_records(list_batches(str(tmp_path))[0]))
    assert str(failure.value) == f"batch bad.jsonl, line 2: not valid JSON ({reason})"


def test_a_line_that_is_not_an_object_is_named(tmp_path):
    (tmp_path / "bad.jsonl").write_text("[1, 2]\n")
    with pytest.raises(RawDataError, match="line 1: a JSON list, not an object"):
        list(read_records(list_batches(str(tmp_path))[0]))


def test_the_fingerprint_changes_with_the_content(tmp_path):
    batch = tmp_path / "a.jsonl"
    batch.write_text('{"x": 1}\n')
    before = list_batches(str(tmp_path))[0].fingerprint
    batch.write_text('{"x": 1}\n{"x": 2}\n')
    assert list_batches(str(tmp_path))[0].fingerprint != before


@pytest.mark.parametrize("name", ["../../etc/passwd.jsonl", "..", ".hidden.jsonl", "a b/c.jsonl", "-rf.jsonl", ""])
def test_partition_keys_from_odd_names_stay_inside_the_output_root(name):
    key = partition_key_for_batch(name)
    assert "/" not in key and not key.startswith((".", "-")) and key
    assert partition_url("/out", key).startswith("/out/partitions/")


@pytest.mark.parametrize("key", ["../evil", "..", ".", "a/b", "/abs", "", "x" * 200, "abc\n", "abc\n\n", "\nabc"])
def test_unsafe_partition_keys_are_refused_as_paths(key):
    with pytest.raises(ValueError, match="unsafe partition key"):
        partition_url("/out", key)


def test_names_that_differ_only_in_unsafe_characters_get_distinct_keys(tmp_path):
    (tmp_path / "a b.jsonl").write_text("{}\n")
    (tmp_path / "a_b.jsonl").write_text("{}\n")
    keys = {b.partition_key for b in list_batches(str(tmp_path))}
    assert len(keys) == 2  # the changed name gets a hash suffix


@pytest.mark.parametrize("names", [("x.jsonl", "x/"), ("a.jsonl", "a.jsonl.gz"), ("p.parquet", "p.jsonl")])
def test_batches_whose_names_give_the_same_key_are_refused(tmp_path, names):
    for name in names:
        if name.endswith("/"):
            (tmp_path / name / "cat").mkdir(parents=True)
            (tmp_path / name / "cat" / "1.png").write_bytes(b"png")
        else:
            (tmp_path / name).write_bytes(b"")
    first, second = sorted(name.rstrip("/") for name in names)
    with pytest.raises(RawDataError, match="map to the same partition key") as error:
        list_batches(str(tmp_path))
    assert first in str(error.value) and second in str(error.value)


def test_parquet_batches_are_read_row_by_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as parquet

    rows = [
        {"uid": f"u{n}", "n": n, "score": n / 2, "blob": bytes([n % 256]), "tags": ["a", "b"][: n % 3]}
        for n in range(10_000)
    ]
    parquet.write_table(pa.Table.from_pylist(rows), tmp_path / "part-1.parquet", row_group_size=3000)
    (batch,) = list_batches(str(tmp_path))
    assert (batch.partition_key, batch.layout) == ("part-1", "parquet")
    read = list(read_records(batch))
    assert read[0] == (1, rows[0]) and read[-1] == (10_000, rows[-1]) and len(read) == 10_000


def test_an_unreadable_parquet_batch_is_named(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(RawDataError, match="batch broken.parquet: unreadable Parquet"):
        list(read_records(list_batches(str(tmp_path))[0]))


def test_a_raw_url_naming_one_file_is_refused_naming_its_folder(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"x": 1}\n')
    with pytest.raises(RawDataError, match=rf"raw URL {tmp_path}/a.jsonl is a file, not a folder: .*{tmp_path}\b"):
        list_batches(str(tmp_path / "a.jsonl"))


def test_a_folder_of_batch_files_without_images_is_refused_naming_them(tmp_path):
    (tmp_path / "day1").mkdir()
    (tmp_path / "day1" / "part-0.jsonl").write_text('{"x": 1}\n')
    (tmp_path / "day1" / "part-1.parquet").write_bytes(b"PAR1")
    (batch,) = list_batches(str(tmp_path))
    assert batch.layout == "refused"
    with pytest.raises(
        RawDataError, match=r"batch day1: a folder with no images but 2 batch files \(part-0.jsonl, part-1"
    ):
        list(read_records(batch))


def test_a_folder_of_images_beside_a_batch_file_is_still_a_file_tree(tmp_path):
    (tmp_path / "pics" / "cats").mkdir(parents=True)
    (tmp_path / "pics" / "cats" / "1.png").write_bytes(b"\x89PNG")
    (tmp_path / "pics" / "labels.jsonl").write_text('{"x": 1}\n')
    assert [b.layout for b in list_batches(str(tmp_path))] == ["filetree"]


def test_hidden_entries_directly_under_the_raw_url_are_not_batches(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"x": 1}\n')
    (tmp_path / "._a.jsonl").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")  # macOS's AppleDouble file
    (tmp_path / ".#a.jsonl").symlink_to("someone@host.1234:1700000000")  # Emacs's lock while a.jsonl is edited
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "a-checkpoint.jsonl").write_text('{"x": 0}\n')
    (tmp_path / ".Trash-1000" / "files").mkdir(parents=True)  # a desktop's trash on a removable drive
    (tmp_path / ".Trash-1000" / "files" / "deleted.png").write_bytes(b"\x89PNG")
    assert [batch.name for batch in list_batches(str(tmp_path))] == ["a.jsonl"]


def test_one_name_in_two_unicode_forms_is_refused_naming_both(tmp_path):
    composed, decomposed = unicodedata.normalize("NFC", "café.jsonl"), unicodedata.normalize("NFD", "café.jsonl")
    (tmp_path / composed).write_text('{"x": 1}\n')  # uploaded from one machine
    (tmp_path / decomposed).write_text('{"x": 1}\n')  # and again from a Mac: the very name, to a reader
    with pytest.raises(RawDataError, match="the same name in two Unicode forms") as error:
        list_batches(str(tmp_path))
    assert ascii(composed) in str(error.value) and ascii(decomposed) in str(error.value)


def test_a_last_line_cut_short_says_the_file_may_still_be_written(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"x": 1}\n{"x": 2, "y": "hal')  # an upload in progress
    with pytest.raises(RawDataError, match="batch a.jsonl, line 2: not valid JSON .*no newline.*still being written"):
        list(read_records(list_batches(str(tmp_path))[0]))
    (tmp_path / "b.jsonl").write_text('{"x": 1}\n{"x": \n')  # a bad line in a complete file
    with pytest.raises(RawDataError) as error:
        list(read_records(list_batches(str(tmp_path))[1]))
    assert "still being written" not in str(error.value)
