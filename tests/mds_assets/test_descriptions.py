"""What the UI shows of an asset or a sensor says what the code does."""

import os
import subprocess
import sys

from mds_assets.assets.index import mds_index


def test_the_sensor_description_names_the_configured_partitions_per_run():
    code = "from mds_assets.sensors import raw_batch_sensor; print(raw_batch_sensor.description)"
    env = dict(os.environ, MDS_SENSOR_PARTITIONS_PER_RUN="3")
    shown = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert "up to 3 adjacent partitions" in shown.stdout


def test_the_index_description_says_the_previous_index_is_always_removed():
    description = " ".join(mds_index.descriptions_by_key[mds_index.key].split())
    assert "only when" not in description
    assert "then its index is removed" in description
