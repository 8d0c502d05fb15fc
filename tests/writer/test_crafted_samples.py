"""`mds head` and `mds verify` on samples and manifests that do not decode as their recorded
column encodings: one sentence naming the file, sample and field (never a traceback), and verify
decodes every sample with the recorded encodings too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from writer import StreamingDatasetWriter

from .test_crafted_indexes import run_mds

ENCODINGS = {"n": "int64", "j": "json", "s": "str"}
GOOD = {"n": (7).to_bytes(8, "little"), "j": b'{"a": 1}', "s": b"fine"}


def _dataset(directory: Path, bad: dict[str, bytes]) -> Path:
    with StreamingDatasetWriter(str(directory), list(ENCODINGS), column_encodings=ENCODINGS) as writer:
        writer.write_samples([GOOD, {**GOOD, **bad}], use_tqdm=False)
    return directory


CRAFTED_SAMPLES = {
    "a 3-byte int64": ({"n": b"\x01\x02\x03"}, "n"),
    "JSON 100 000 deep": ({"j": b"[" * 100_000 + b"]" * 100_000}, "j"),
    "JSON that is not JSON": ({"j": b"{'a': 1}"}, "j"),
    "str that is not UTF-8": ({"s": b"\xff\xfe"}, "s"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED_SAMPLES))
def test_head_and_verify_name_the_sample_and_field_that_do_not_decode(tmp_path, case):
    bad, field = CRAFTED_SAMPLES[case]
    directory = _dataset(tmp_path / "ds", bad)
    code, stdout, stderr, _ = run_mds("head", str(directory), tmp_path=tmp_path)
    assert code == 1 and "Traceback" not in stderr and len(stderr.splitlines()) == 1, stderr
    assert f"{directory}/000000.mds, sample 1, field {field!r}: not decodable as {ENCODINGS[field]}" in stderr, stderr
    code, stdout, stderr, _ = run_mds("verify", "--quiet", str(directory), tmp_path=tmp_path)
    assert code == 1 and stdout.startswith("FAILED"), stdout + stderr
    assert f"sample 1, field {field!r}: not decodable as {ENCODINGS[field]}" in stdout, stdout


@pytest.mark.parametrize(("encoding", "said"), [(["int64"], "a JSON list"), ("pickle", "'pickle'")])
def test_a_manifest_with_an_unknown_column_encoding_is_named(tmp_path, encoding, said):
    directory = _dataset(tmp_path / "ds", {})
    manifest = json.loads((directory / "mds_manifest.json").read_text())
    manifest["settings"]["column_encodings"]["n"] = encoding
    (directory / "mds_manifest.json").write_text(json.dumps(manifest))
    code, _, stderr, _ = run_mds("head", str(directory), tmp_path=tmp_path)
    assert code == 1 and "Traceback" not in stderr, stderr
    assert f"{directory}/mds_manifest.json: not a valid manifest" in stderr and said in stderr, stderr
    code, stdout, _, _ = run_mds("verify", "--quiet", str(directory), tmp_path=tmp_path)
    assert code == 1 and "mds_manifest.json: not a valid manifest" in stdout, stdout
