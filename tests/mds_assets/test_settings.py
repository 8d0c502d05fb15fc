"""The MDS_* settings: one module reads them, the code location refuses bad ones when it loads
(naming each variable and what it allows), sizes take units, and docs/settings.md is their table."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mds_assets import settings
from mds_assets.cli import main
from mds_assets.core.sizes import format_size, parse_size
from mds_assets.resources import settings_from_environment

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MDS_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    "text, size",
    [("16MiB", 16 << 20), ("64MB", 64_000_000), ("4mb", 4_000_000), ("1.5GiB", 3 << 29), ("5 kB", 5000), ("100", 100)],
)
def test_sizes_take_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["4XB", "0", "0.5", "-1", "", "1e6", "MB", "16 MiB of data"])
def test_what_is_not_a_size_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="size|bytes"):
        parse_size(text)


def test_a_size_is_spelt_back_exactly() -> None:
    assert [format_size(size) for size in (16 << 20, 64_000_000, 1001)] == ["16MiB", "64MB", "1001"]


@pytest.mark.parametrize(
    "name, value, named",
    [
        ("MDS_SHARD_SIZE_LIMIT", "4XB", "MDS_SHARD_SIZE_LIMIT='4XB': '4XB' is not a size; allowed: a positive number"),
        ("MDS_COMPRESSION", "gzip", "MDS_COMPRESSION='gzip': unknown compression 'gzip'; allowed: unset, 'gz'"),
        ("MDS_FIELDS", "uid,n:int46", "MDS_FIELDS='uid,n:int46': field 'n': unknown encoding 'int46'; allowed:"),
        ("MDS_EXECUTOR", "dask", "MDS_EXECUTOR='dask': expected one of in_process, multiprocess, celery, k8s"),
        ("MDS_SENSOR_INTERVAL_SECONDS", "0", "MDS_SENSOR_INTERVAL_SECONDS='0': not a whole number of 1 or more"),
        ("MDS_SENSOR_PARTITIONS_PER_RUN", "x", "MDS_SENSOR_PARTITIONS_PER_RUN='x': not a whole number"),
        ("MDS_CELERY_VISIBILITY_TIMEOUT", "10m", "MDS_CELERY_VISIBILITY_TIMEOUT='10m': not a whole number"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_what_it_allows(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, named: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(settings.SettingError) as error:
        settings_from_environment()
    assert named in str(error.value)


def test_a_secret_setting_is_refused_without_repeating_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDS_ALERT_WEBHOOK_URL", "hooks.slack.com/services/T0/B0/TOKEN123")
    monkeypatch.setenv("MDS_CELERY_BROKER", "redis-host-with-PASSWORD456")
    with pytest.raises(settings.SettingError) as error:
        settings.check_environment()
    message = str(error.value)
    assert "MDS_ALERT_WEBHOOK_URL (value not shown" in message and "MDS_CELERY_BROKER (value not shown" in message
    assert "TOKEN123" not in message and "PASSWORD456" not in message


def test_every_bad_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDS_COMPRESSION", "gzip")
    monkeypatch.setenv("MDS_FIELDS", "uid,n:int46")
    with pytest.raises(settings.SettingError) as error:
        settings.SENSOR_INTERVAL_SECONDS.read()  # a good variable read first: still every bad one is named
        settings.COMPRESSION.read()
    assert "MDS_COMPRESSION=" in str(error.value) and "MDS_FIELDS=" in str(error.value)


def test_values_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    default = settings_from_environment()
    assert default.shard_size_limit == 16 << 20 and default.compression is None
    assert default.fields == ["uid", "caption", "image:base64", "width:int64", "height:int64"]
    monkeypatch.setenv("MDS_SHARD_SIZE_LIMIT", "4MB")
    monkeypatch.setenv("MDS_COMPRESSION", "gz:9")
    monkeypatch.setenv("MDS_FIELDS", " uid , n:int64 ")
    monkeypatch.setenv("MDS_EXECUTOR", " Multiprocess ")
    configured = settings_from_environment()
    assert configured.shard_size_limit == 4_000_000 and configured.compression == "gz:9"
    assert configured.fields == ["uid", "n:int64"]
    assert settings.EXECUTOR.read() == "multiprocess"


def test_an_output_inside_the_raw_data_is_refused_naming_both_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MDS_RAW_URL", str(tmp_path / "raw"))
    monkeypatch.setenv("MDS_OUT_URL", str(tmp_path / "raw" / "mds"))
    with pytest.raises(settings.SettingError, match="MDS_OUT_URL, MDS_RAW_URL: out_url .* is inside the raw_url"):
        settings_from_environment()


def _validate(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """`dagster definitions validate` of the code location, as a deployment would run it."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("MDS_")}
    environment |= {"DAGSTER_HOME": str(tmp_path), "DAGSTER_DISABLE_TELEMETRY": "1", **variables}
    (tmp_path / "dagster.yaml").touch()
    return subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "mds_assets.definitions"],
        env=environment,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_bad_settings_fail_dagster_definitions_validate_with_one_message(tmp_path: Path) -> None:
    done = _validate(tmp_path, MDS_SHARD_SIZE_LIMIT="4XB", MDS_COMPRESSION="gzip", MDS_FIELDS="uid,n:int46")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert output.count("bad MDS_* settings") == 1
    for named in ("MDS_SHARD_SIZE_LIMIT='4XB'", "MDS_COMPRESSION='gzip'", "MDS_FIELDS='uid,n:int46'"):
        assert named in output, output
    assert "invalid literal for int()" not in output


def test_an_output_inside_the_raw_data_fails_dagster_definitions_validate(tmp_path: Path) -> None:
    done = _validate(tmp_path, MDS_RAW_URL=str(tmp_path / "raw"), MDS_OUT_URL=str(tmp_path / "raw" / "mds"))
    assert done.returncode != 0 and "MDS_OUT_URL, MDS_RAW_URL: out_url" in done.stdout + done.stderr


def test_a_size_with_a_unit_passes_dagster_definitions_validate(tmp_path: Path) -> None:
    done = _validate(tmp_path, MDS_SHARD_SIZE_LIMIT="4MB")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_command_line_takes_sizes_with_units_and_refuses_zero_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["build", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--fields", "uid"]
    with pytest.raises(SystemExit) as exit_status:
        main([*arguments, "--workers", "0"])
    assert exit_status.value.code == 2
    assert "--workers: '0': expected a whole number, 1 or more" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*arguments, "--shard-size-limit", "4XB"])
    assert "--shard-size-limit: '4XB' is not a size" in capsys.readouterr().err


def test_the_command_line_size_reaches_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr("mds_assets.cli._run", lambda configured, args: seen.append(configured) or 0)
    arguments = ["build", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--fields", "uid"]
    assert main([*arguments, "--shard-size-limit", "64MB"]) == 0
    assert seen[0].shard_size_limit == 64_000_000


def _reads_of_the_environment(path: Path) -> list[str]:
    """Where a module touches os.environ / os.getenv, or names an MDS_* variable as a string of its own."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            found.append(f"{path.name}:{node.lineno} os.{node.attr}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("MDS_"):
            found.append(f"{path.name}:{node.lineno} {node.value!r}")
    return found


def test_mds_variables_are_read_in_the_settings_module_only() -> None:
    modules = [path for path in (REPO / "mds_assets").rglob("*.py") if path.name != "settings.py"]
    reads = [read for path in modules for read in _reads_of_the_environment(path)]
    # build.py's DAGSTER_HOME is Dagster's own variable, not a setting of ours
    assert [read for read in reads if not read.startswith("build.py")] == []


def test_docs_settings_is_the_table_of_every_variable() -> None:
    page = (REPO / "docs" / "settings.md").read_text()
    assert settings.markdown_table() in page
    documented = {line.split("`")[1] for line in page.splitlines() if line.startswith("| `MDS_")}
    assert documented == set(settings.VARIABLES)
