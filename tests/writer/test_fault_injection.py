"""Every storage change of the publishing paths fails in turn, on a local directory.

See tests/faults.py for the invariant. The same scenarios run on a real S3-compatible server
in tests/system/test_s3_faults.py.
"""

from ..fault_scenarios import (
    Scenario,
    index_publish,
    partition_promotion,
    streaming_rebuild_and_publish,
    writer_finish,
)


def test_every_fault_in_a_writer_leaves_no_index_or_the_complete_dataset(tmp_path):
    states = writer_finish(Scenario(str(tmp_path)))
    # every change but the lock's removal fails the writer and leaves no index (it had no previous dataset)
    assert states["changes"] >= 10 and states == {
        "changes": states["changes"],
        "no index": states["changes"] - 1,
        "new, cleanup warned": 1,
    }


def test_every_fault_in_a_partition_promotion_keeps_the_previous_partition_or_publishes_the_new(tmp_path):
    states = partition_promotion(Scenario(str(tmp_path)))
    assert states["changes"] >= 10 and states.get("previous", 0) >= 1


def test_every_fault_in_an_appending_publish_keeps_a_dataset_or_unpublishes_only_in_its_last_steps(tmp_path):
    states = index_publish(Scenario(str(tmp_path)), appended=True)
    assert states.get("previous", 0) > states.get("no index", 0)  # most steps keep the previous dataset live


def test_every_fault_in_a_renumbering_publish_leaves_previous_new_or_no_index(tmp_path):
    states = index_publish(Scenario(str(tmp_path)), appended=False)
    assert states["changes"] >= 5


def test_every_fault_in_a_streaming_rebuild_and_publish_keeps_the_published_files_or_publishes_the_new(tmp_path):
    states = streaming_rebuild_and_publish(Scenario(str(tmp_path)))
    # never "no index": the rebuild writes new names and publishing is one atomic write
    assert states["changes"] >= 20 and set(states) <= {"changes", "previous", "new", "new, cleanup warned"}
    assert states["previous"] >= 10 and states.get("new", 0) + states.get("new, cleanup warned", 0) >= 1
