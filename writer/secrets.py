"""Passwords in URLs: shown and stored as `***`, restored only where a file is opened.

`http://user:PASSWORD@host/raw/` is a valid fsspec URL, and URLs are shown everywhere: in
messages, in metadata, in the run config Dagster stores. So a URL is redacted (`redact`) the
moment it is taken in, and its password is remembered (`remember_password`) in this process's
environment, under MDS_URL_PASSWORDS: the processes a build starts inherit it, and nothing it
holds is written anywhere. `with_password` gives the URL its password back just before
fsspec opens it.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import urlsplit

REDACTED = "***"
PASSWORDS_VARIABLE = "MDS_URL_PASSWORDS"

# scheme://user:password@ -- in a URL alone or anywhere in a message (an error quoting a URL)
_USERINFO_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:]*:)(?P<password>[^\s/?#@]*)@")


def redact(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***` (user and host kept)."""
    return _USERINFO_PASSWORD.sub(lambda match: f"{match['head']}{REDACTED}@", text)


def _account(url: str) -> str | None:
    """`scheme://user@host:port`, the key a URL's password is remembered under; None without userinfo."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or "@" not in parts.netloc:
        return None
    user = parts.netloc.rpartition("@")[0].partition(":")[0]
    return f"{parts.scheme}://{user}@{parts.netloc.rpartition('@')[2]}"


def _password(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    user, colon, password = userinfo.partition(":")
    return password if colon else None


def _remembered() -> dict[str, str]:
    try:
        passwords = json.loads(os.environ.get(PASSWORDS_VARIABLE) or "{}")
    except ValueError:
        return {}
    return passwords if isinstance(passwords, dict) else {}


def remember_password(url: str) -> str:
    """The URL redacted; its password (if any) remembered for `with_password` in this process
    and the processes it starts. A URL already redacted is returned as it is."""
    password = _password(url)
    account = _account(url)
    if password is None or password == REDACTED or account is None:
        return url
    passwords = _remembered()
    passwords[account] = password
    os.environ[PASSWORDS_VARIABLE] = json.dumps(passwords)
    return redact(url)


def with_password(url: str) -> str:
    """A redacted URL with its remembered password back, for fsspec to open; any other URL as it is."""
    if _password(url) != REDACTED:
        return url
    account = _account(url)
    password = _remembered().get(account) if account else None
    if password is None:
        return url
    scheme, _, rest = url.partition("://")
    user, _, after = rest.partition(":")
    return f"{scheme}://{user}:{password}{after[len(REDACTED) :]}"
