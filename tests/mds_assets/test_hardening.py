"""Hardening: links out of the raw root, deep JSON, empty batches, --out inside --raw, unsafe
keys, bad --storage-options, the load snippet, and pool workers that die with their parent."""

import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import psutil
import pytest
from dagster import materialize

from mds_assets.assets.batch_pipeline import batch_pipeline
from mds_assets.assets.index import how_to_load
from mds_assets.build import build
from mds_assets.cli import main
from mds_assets.core.raw_sources import RawDataError, list_batches, read_records
from mds_assets.core.selection import RecordEncoder, SelectionError, parse_fields
from mds_assets.keys import RAW_SAMPLES
from mds_assets.partitions import raw_batches
from mds_assets.resources import MDSSettings
from writer import MDSDataset, StreamingDatasetWriter
from writer.verify import verify

from ..commands import MDS_ASSETS, build_arguments
from .conftest import FIELDS, record, write_batch

REPO = Path(__file__).resolve().parents[2]
SECRET = "hunter2-do-not-print"


# 1. links ------------------------------------------------------------------------------------


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
    (raw / "pics").symlink_to(raw / "imgs")
    batches = {b.partition_key: b for b in list_batches(str(raw))}
    assert batches["latest"].layout == "jsonl" and batches["pics"].layout == "filetree"
    assert list(read_records(batches["latest"])) == [(1, {"x": 1})]
    assert [r["path"] for _, r in read_records(batches["pics"])] == ["cat/1.png"]


def test_a_linked_raw_root_is_read_through_its_link(tree, tmp_path):
    raw, _ = tree
    (tmp_path / "alias").symlink_to(raw)
    assert [r["path"] for _, r in read_all(tmp_path / "alias", "imgs")] == ["cat/1.png"]


# 3. deep JSON --------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [300, 1000, 1030])
def test_deeply_nested_json_names_batch_line_and_field(tmp_path, depth):
    (tmp_path / "deep.jsonl").write_text('{"a": 1}\n{"uid": "1", "meta": %s}\n' % ("[" * depth + "]" * depth))
    with pytest.raises(RawDataError, match=r"batch deep.jsonl, line 2(, field 'meta')?: .*(nested|depth)"):
        list(read_records(list_batches(str(tmp_path))[0]))


def test_many_shallow_arrays_are_not_deep(tmp_path):
    (tmp_path / "wide.jsonl").write_text('{"a": %s}\n' % ",".join(["[[1]]"] * 500).join("[]"))
    assert list(read_records(list_batches(str(tmp_path))[0])) == [(1, {"a": [[[1]]] * 500})]


def test_a_value_too_deep_to_encode_names_batch_line_and_field():
    deep = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(SelectionError, match=r"batch b, line 3, field 'm': not valid json"):
        RecordEncoder(parse_fields("m:json"), "b").encode(3, {"m": deep})


def test_deep_json_fails_its_partition_naming_batch_line_and_field(instance, tmp_path):
    write_batch(tmp_path / "raw", "ok.jsonl", [{"uid": "1", "meta": [[1]]}])
    (tmp_path / "raw" / "deep.jsonl").write_text('{"uid": "1", "meta": %s}\n' % ("[" * 1000 + "]" * 1000))
    settings = MDSSettings(raw_url=str(tmp_path / "raw"), out_url=str(tmp_path / "out"), fields=["uid", "meta:json"])
    report = build(settings, workers=1, progress=False)
    (error,) = report.failed.values()  # deep.jsonl's partition (with ok.jsonl: small files share one)
    assert error.startswith("batch deep.jsonl, line 1, field 'meta': nested deeper than")


# 4. empty batches ----------------------------------------------------------------------------


def test_empty_batches_become_empty_partitions_and_do_not_fail_the_others(instance, settings, raw_dir, tmp_path):
    (raw_dir / "empty.jsonl").write_bytes(b"")
    (raw_dir / "blank.jsonl").write_text("\n  \n\n")
    (raw_dir / "nofiles").mkdir()
    report = build(settings, workers=1, progress=False)
    assert report.ok and not report.failed, report.failed
    assert sorted(report.built) == ["batch-0", "batch-1", "batch-2", "blank", "empty", "nofiles"]
    for key in ("empty", "blank", "nofiles"):
        assert len(MDSDataset(str(tmp_path / "out" / "partitions" / key))) == 0
    published = MDSDataset(str(tmp_path / "out"))
    assert len(published) == 120 and verify(published.storage.url).problems == []


def test_a_raw_folder_of_empty_batches_publishes_an_empty_dataset(instance, tmp_path):
    write_batch(tmp_path / "raw", "empty.jsonl", [])
    settings = MDSSettings(raw_url=str(tmp_path / "raw"), out_url=str(tmp_path / "out"), fields=FIELDS)
    report = build(settings, workers=1, progress=False)
    assert report.ok and report.built == ["empty"], report
    assert len(MDSDataset(str(tmp_path / "out"))) == 0


# 5. --out inside --raw -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, out",
    [
        ("/data/raw", "/data/raw"),
        ("/data/raw", "/data/raw/mds"),
        ("/data/raw/", "/data/raw/x/y"),
        ("s3://b/raw", "s3://b/raw/mds"),
        ("s3://b/raw/", "s3://b/raw"),
        ("file:///data/raw", "/data/raw/mds"),
        ("/data/raw", "/data/raw/../raw/mds"),
    ],
)
def test_an_output_inside_the_raw_url_is_refused(raw, out):
    with pytest.raises(ValueError, match="inside the raw"):
        MDSSettings(raw_url=raw, out_url=out, fields=["uid"]).check()


@pytest.mark.parametrize(
    "raw, out",
    [
        ("/data/raw", "/data/raw2"),
        ("/data/raw", "/data/mds"),
        ("s3://b/raw", "s3://b/raw-mds"),
        ("s3://b/raw", "s3://other/raw"),
        ("/data/raw", "s3://data/raw/mds"),
    ],
)
def test_an_output_beside_the_raw_url_is_accepted(raw, out):
    MDSSettings(raw_url=raw, out_url=out, fields=["uid"]).check()


def test_the_command_refuses_an_output_inside_the_raw_folder(instance, raw_dir, capsys):
    before = sorted(p.name for p in raw_dir.iterdir())
    status = main([*build_arguments(str(raw_dir), str(raw_dir / "mds"), "uid"), "--quiet"])
    assert status == 1
    assert f"out_url {raw_dir / 'mds'} is inside the raw" in capsys.readouterr().err
    assert sorted(p.name for p in raw_dir.iterdir()) == before


def test_a_run_from_the_ui_refuses_an_output_inside_the_raw_folder(instance, raw_dir):
    settings = MDSSettings(raw_url=str(raw_dir), out_url=str(raw_dir / "mds"), fields=FIELDS)
    instance.add_dynamic_partitions(raw_batches.name, ["batch-0"])
    result = materialize(
        [batch_pipeline],
        selection=[RAW_SAMPLES],
        partition_key="batch-0",
        instance=instance,
        resources={"mds_settings": settings},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_failure)
    assert "is inside the raw" in str(failure.event_specific_data.error)


# 8. --storage-options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, message",
    [
        (f'["{SECRET}"]', "must be a JSON object"),
        (f'"{SECRET}"', "must be a JSON object"),
        (f'{{"key": "{SECRET}"', "not valid JSON"),
        (f"{SECRET}", "not valid JSON"),
    ],
)
def test_bad_storage_options_are_refused_without_echoing_them(instance, settings, value, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                *build_arguments(settings.raw_url, settings.out_url, "uid"),
                "--storage-options",
                value,
                "--quiet",
            ]
        )
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert message in err
    assert SECRET not in out + err


def test_settings_errors_never_echo_their_input():
    with pytest.raises(ValueError) as error:
        MDSSettings(raw_url="a", out_url="b", fields=["uid"], storage_options=[SECRET])
    assert "storage_options" in str(error.value) and SECRET not in str(error.value)


# 2. the load snippet -------------------------------------------------------------------------


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
    with StreamingDatasetWriter(url, [s.name for s in selections], 1000) as writer:
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


# 7. pool workers die with their parent ---------------------------------------------------------


def test_killing_the_build_kills_its_pool_workers(tmp_path):
    raw = tmp_path / "raw"
    for batch in range(6):
        write_batch(raw, f"b{batch}.jsonl", [dict(record(batch, n), text="x" * 2000) for n in range(4000)])
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "home"), DAGSTER_DISABLE_TELEMETRY="1", PYTHONPATH=str(REPO))
    parent = subprocess.Popen(
        [
            *MDS_ASSETS,
            *build_arguments(str(raw), str(tmp_path / "out"), FIELDS),
            "--workers",
            "2",
            "--quiet",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children = []
    try:
        deadline = time.monotonic() + 60
        while len(children) < 2 and time.monotonic() < deadline and parent.poll() is None:
            try:
                children = psutil.Process(parent.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        assert len(children) >= 2, "the build never started its workers"
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, f"workers outlived their parent: {[p.pid for p in alive]}"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
