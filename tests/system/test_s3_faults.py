"""Every storage change of the publishing paths fails in turn, on a real S3-compatible server.

The same scenarios as tests/writer/test_fault_injection.py (local disk); see tests/faults.py.
"""

import pytest

from ..fault_scenarios import (
    Scenario,
    index_publish,
    partition_promotion,
    streaming_rebuild_and_publish,
    writer_finish,
)

pytestmark = pytest.mark.system


@pytest.fixture
def bucket(s3):
    s3.client().create_bucket(Bucket="faults")
    return Scenario("s3://faults")


def test_every_fault_in_a_writer_on_s3_leaves_no_index_or_the_complete_dataset(bucket):
    states = writer_finish(bucket)
    assert states["changes"] >= 10 and states["no index"] == states["changes"] - states.get("new, cleanup warned", 0)


def test_every_fault_in_a_partition_promotion_on_s3_keeps_the_previous_partition_or_publishes_the_new(bucket):
    assert partition_promotion(bucket).get("previous", 0) >= 1


def test_every_fault_in_an_appending_publish_on_s3_keeps_the_previous_dataset_until_its_last_steps(bucket):
    states = index_publish(bucket, appended=True)
    assert states.get("previous", 0) > states.get("no index", 0)


def test_every_fault_in_a_renumbering_publish_on_s3_leaves_previous_new_or_no_index(bucket):
    assert index_publish(bucket, appended=False)["changes"] >= 5


def test_every_fault_in_a_streaming_rebuild_and_publish_on_s3_keeps_the_published_files_or_publishes_the_new(bucket):
    states = streaming_rebuild_and_publish(bucket)
    assert states["changes"] >= 20 and set(states) <= {"changes", "previous", "new", "new, cleanup warned"}
    assert states["previous"] >= 10
