"""`kill -9` of `mds-assets build`: nothing of it outlives it, and whoever reads its output sees
the end of it (no `tail -F` of Dagster's left holding its stdout/stderr)."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from ..commands import MDS_ASSETS, build_arguments

REPO = Path(__file__).resolve().parents[2]


def _session(leader: int) -> dict[int, str]:
    """Live processes of the session `leader` started (pid -> command name); zombies are dead."""
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        state, session = fields[0], int(fields[3])
        if session == leader and state != "Z":
            members[int(entry.name)] = name
    return members


def _read_to_end(stream: "subprocess.IO[bytes]", done: threading.Event) -> None:
    stream.read()
    done.set()


def _children(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
            children.append(int(entry.name))
    return children


def _building(tmp_path: Path) -> tuple[subprocess.Popen[bytes], dict[str, threading.Event]]:
    """`mds-assets build --workers 2` of four batches, once a step is writing a partition, with
    its stdout and stderr read to their end in threads (each event set at the end)."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    for batch in range(4):  # big enough that the build is inside a step when it is killed
        rows = "".join(json.dumps({"uid": f"{batch}-{n}", "text": "t" * (n % 50)}) + "\n" for n in range(60_000))
        (raw / f"b{batch}.jsonl").write_text(rows)
    build = subprocess.Popen(
        [*MDS_ASSETS, *build_arguments(raw, out, "uid,text"), "--workers", "2", "--shard-size-limit", "20000"],
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home")},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its session id names every process it starts, wherever they are reparented
    )
    ends = {name: threading.Event() for name in ("stdout", "stderr")}
    for name, event in ends.items():
        threading.Thread(target=_read_to_end, args=(getattr(build, name), event), daemon=True).start()
    deadline = time.monotonic() + 120
    while not any((out / "partitions" / ".staging").glob("b*")):  # a step is writing a partition
        assert time.monotonic() < deadline and build.poll() is None, "the build never started a partition"
        time.sleep(0.01)
    return build, ends


def _assert_all_ended(build: subprocess.Popen[bytes], ends: dict[str, threading.Event], bound: float) -> None:
    deadline = time.monotonic() + bound
    while _session(build.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _session(build.pid) == {}, f"still running {bound} s after the kill: {_session(build.pid)}"
    assert all(event.wait(timeout=bound) for event in ends.values()), "the build's stdout/stderr never ended"


def test_a_killed_build_leaves_no_process_and_its_output_ends(tmp_path: Path) -> None:
    build, ends = _building(tmp_path)
    at_kill = _session(build.pid)
    os.kill(build.pid, signal.SIGKILL)
    build.wait(timeout=10)
    assert "tail" not in at_kill.values(), at_kill  # no process that only a watcher's poll would end
    _assert_all_ended(build, ends, bound=10)


def test_a_killed_worker_ends_the_build_and_the_other_worker(tmp_path: Path) -> None:
    build, ends = _building(tmp_path)
    workers = [pid for pid in _children(build.pid) if _session(build.pid).get(pid) == "python"]
    assert len(workers) == 2, _session(build.pid)
    os.kill(workers[0], signal.SIGKILL)
    assert build.wait(timeout=30) != 0  # the build fails (and says so), it does not build on without a worker
    _assert_all_ended(build, ends, bound=10)
