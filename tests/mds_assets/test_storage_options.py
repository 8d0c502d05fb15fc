"""Bad storage options are refused without their value being repeated."""

import pytest

from mds_assets.cli import main
from mds_assets.resources import MDSSettings

from ..commands import build_arguments

SECRET = "hunter2-do-not-print"


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
