"""An output at or under the raw URL is refused before any work (it would be read back as a batch)."""

import pytest
from dagster import materialize

from mds_assets.assets.batch_pipeline import batch_pipeline
from mds_assets.cli import main
from mds_assets.keys import RAW_SAMPLES
from mds_assets.partitions import raw_batches
from mds_assets.resources import MDSSettings

from ..commands import build_arguments
from .conftest import FIELDS


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
