"""Symbolic links in raw batches: followed inside the raw root, refused (named, never read)
when they leave it or are broken."""

import pytest

from mds_assets.core.raw_sources import RawDataError, list_batches, read_records

SECRET = "hunter2-do-not-print"


@pytest.fixture
def tree(tmp_path):
    """raw/imgs/cat/1.png (a real file) and a secret outside the raw root."""
    raw = tmp_path / "raw"
    (raw / "imgs" / "cat").mkdir(parents=True)
    (raw / "imgs" / "cat" / "1.png").write_bytes(b"\x89PNG")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "o.jsonl").write_text('{"uid": "%s"}\n' % SECRET)
    (outside / "dir").mkdir()
    (outside / "dir" / "f.png").write_text(SECRET)
    return raw, outside


def read_all(raw, key):
    (batch,) = [b for b in list_batches(str(raw)) if b.partition_key == key]
    return list(read_records(batch))


def test_a_link_in_a_file_tree_batch_that_leaves_the_raw_root_refuses_the_batch(tree):
    raw, outside = tree
    (raw / "imgs" / "cat" / "x").symlink_to(outside / "secret.txt")
    with pytest.raises(
        RawDataError,
        match=r"batch imgs, file cat/x: a symbolic link to .*outside the raw"
        r" root",
    ) as error:
        read_all(raw, "imgs")
    assert SECRET not in str(error.value)


def test_a_link_to_a_directory_outside_the_raw_root_refuses_the_batch(tree):
    raw, outside = tree
    (raw / "imgs" / "dir").symlink_to(outside / "dir")
    with pytest.raises(RawDataError, match="batch imgs, file dir: a symbolic link"):
        read_all(raw, "imgs")


def test_a_broken_link_refuses_the_batch(tree):
    raw, _ = tree
    (raw / "imgs" / "cat" / "gone").symlink_to(raw / "nowhere")
    with pytest.raises(RawDataError, match="batch imgs, file cat/gone: a symbolic link to .*nowhere"):
        read_all(raw, "imgs")


def test_a_link_to_a_file_inside_the_raw_root_is_read(tree):
    raw, _ = tree
    (raw / "imgs" / "cat" / "alias.png").symlink_to(raw / "imgs" / "cat" / "1.png")
    assert [r["content"] for _, r in read_all(raw, "imgs")] == [b"\x89PNG", b"\x89PNG"]


def test_a_top_level_link_leaving_the_raw_root_is_listed_and_refused_naming_it(tree):
    raw, outside = tree
    (raw / "o.jsonl").symlink_to(outside / "o.jsonl")
    (raw / "d").symlink_to(outside / "dir")
    assert {b.partition_key for b in list_batches(str(raw))} == {"imgs", "o", "d"}
    for key, name in (("o", "o.jsonl"), ("d", "d")):
        with pytest.raises(RawDataError, match=f"batch {name}: a symbolic link to .*outside the raw root") as error:
            read_all(raw, key)
        assert SECRET not in str(error.value)


def test_a_top_level_link_inside_the_raw_root_is_a_batch(tree):
    raw, _ = tree
    (raw / "data").mkdir()
    (raw / "data" / "real.jsonl").write_text('{"x": 1}\n')
    (raw / "latest.jsonl").symlink_to(raw / "data" / "real.jsonl")
    (raw / ".store" / "cat").mkdir(parents=True)  # hidden: no batch but through the link
    (raw / ".store" / "cat" / "1.png").write_bytes(b"\x89PNG")
    (raw / "pics").symlink_to(raw / ".store")
    batches = {b.partition_key: b for b in list_batches(str(raw))}
    assert batches["latest"].layout == "jsonl" and batches["pics"].layout == "filetree"
    assert list(read_records(batches["latest"])) == [(1, {"x": 1})]
    assert [r["path"] for _, r in read_records(batches["pics"])] == ["cat/1.png"]


def test_a_linked_raw_root_is_read_through_its_link(tree, tmp_path):
    raw, _ = tree
    (tmp_path / "alias").symlink_to(raw)
    assert [r["path"] for _, r in read_all(tmp_path / "alias", "imgs")] == ["cat/1.png"]


def test_a_folder_of_files_linked_as_batches_from_the_raw_root_is_an_empty_batch(tree):
    raw, _ = tree
    (raw / "data").mkdir()
    (raw / "data" / "real.jsonl").write_text('{"x": 1}\n')
    (raw / "data" / "old.jsonl").write_text('{"x": 0}\n')
    (raw / "latest.jsonl").symlink_to(raw / "data" / "real.jsonl")
    (raw / "previous.jsonl").symlink_to("data/old.jsonl")
    batches = {b.partition_key: b for b in list_batches(str(raw))}
    assert list(read_records(batches["data"])) == []  # its files are published through their links
    (raw / "previous.jsonl").unlink()
    (data,) = [batch for batch in list_batches(str(raw)) if batch.name == "data"]
    with pytest.raises(RawDataError, match=r"batch data: a folder with no images but 1 batch file \(old.jsonl\)"):
        list(read_records(data))


def test_a_top_level_link_to_another_batch_is_no_second_batch(tree):
    raw, _ = tree
    (raw / "2024-01-02.jsonl").write_text('{"x": 2}\n')
    (raw / "data").mkdir()
    (raw / "data" / "real.jsonl").write_text('{"x": 1}\n')
    (raw / "latest.jsonl").symlink_to("2024-01-02.jsonl")  # a pointer to the newest file: the same records
    (raw / "pics").symlink_to(raw / "imgs")
    (raw / "current.jsonl").symlink_to(raw / "data" / "real.jsonl")
    (raw / "also-current.jsonl").symlink_to("current.jsonl")  # a second name for the same file
    names = sorted(batch.name for batch in list_batches(str(raw)))
    assert names == ["2024-01-02.jsonl", "also-current.jsonl", "data", "imgs"]  # of two links, the first by name
