"""Credentials are never storage options: the settings become run config, which Dagster stores
in its database and shows in the UI. An option that looks like one is refused, naming where
credentials go instead (the environment of the processes that run the build)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from writer.secrets import REDACTED, redact

# Option names (any part of them, case-insensitive) that hold a credential in s3fs, gcsfs, adlfs,
# sshfs, HTTP clients' keyword arguments, ...
_CREDENTIAL_NAME = re.compile(
    r"(\A(key|auth|pkey|creds)\Z|secret|token|passw|passphrase|credential|account_key|access_key|"
    r"private_key|api_key|sas|connection_string|authorization)",
    re.IGNORECASE,
)
# Values that name a way to authenticate rather than being a credential (gcsfs' `token`).
_NOT_A_CREDENTIAL = {"anon", "google_default", "cloud", "browser", "cache"}

WHERE_CREDENTIALS_GO = (
    "set them in the environment of the processes that run the build instead "
    "(s3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or AWS_PROFILE; "
    "gcs: GOOGLE_APPLICATION_CREDENTIALS; azure: AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, "
    "AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING); in Dagster code, read a secret of your own "
    "with dagster.EnvVar, never into MDSSettings"
)


def refuse_credentials(options: Mapping[str, Any], path: str = "") -> None:
    """Raise ValueError naming the first option that looks like a credential (never its value)."""
    for name, value in options.items():
        where = f"{path}.{name}" if path else str(name)
        if isinstance(value, Mapping):
            refuse_credentials(value, where)
        elif _is_credential(str(name), value):
            raise ValueError(
                f"storage option {where!r} looks like a credential (its value is not shown); credentials "
                f"are never taken as storage options, which are stored in run config: {WHERE_CREDENTIALS_GO}"
            )
        elif isinstance(value, str) and redact(value) != value:
            raise ValueError(
                f"storage option {where!r} is a URL with a password (not shown); give the password as a "
                f"credential in the environment, not in storage options: {WHERE_CREDENTIALS_GO}"
            )


def _is_credential(name: str, value: Any) -> bool:
    if value is None or isinstance(value, bool) or value == REDACTED:
        return False
    if isinstance(value, str) and value in _NOT_A_CREDENTIAL:
        return False
    return bool(_CREDENTIAL_NAME.search(name))
