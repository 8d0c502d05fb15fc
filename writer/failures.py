"""One sentence for a failure that is not the dataset's fault: storage that does not answer, a
storage option its filesystem does not take. fsspec's backends raise their own exception types
(botocore's, aiohttp's, ...) that are not OSError; the command lines end with this sentence
rather than a traceback."""

from __future__ import annotations

import re

_STORAGE_CLIENTS = {"botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "google", "azure", "adlfs", "urllib3"}
_UNREACHABLE_NAME = re.compile(r"Connect|Timeout|Endpoint|Disconnected|NameResolution")
# fsspec's "Install s3fs to access S3" names the package; what installs it with this project
_EXTRAS = {"s3fs": "pip install 'mds-assets[s3]'"}


def one_line(error: BaseException) -> str:
    """The error's message on one line, or its type's name when it has none."""
    return " ".join(str(error).split()) or type(error).__name__


def is_unreachable(error: BaseException) -> bool:
    """Storage did not answer: no connection, a timeout, a name that does not resolve."""
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    return _client_of(error) in _STORAGE_CLIENTS and bool(_UNREACHABLE_NAME.search(type(error).__name__))


def failure_sentence(error: BaseException, url: str) -> str:
    """What went wrong with the storage at `url`, in one sentence (the caller redacts it)."""
    if is_unreachable(error):
        return f"{url} could not be reached ({type(error).__name__}: {one_line(error)})"
    if isinstance(error, ImportError):  # the filesystem of the URL's protocol is not installed
        hint = next((install for package, install in _EXTRAS.items() if package in str(error)), "")
        return f"{one_line(error)} ({url})" + (f": {hint}" if hint else "")
    if isinstance(error, TypeError) and "keyword argument" in str(error):
        return f"a storage option is not one the filesystem of {url} takes ({one_line(error)})"
    if _client_of(error) in _STORAGE_CLIENTS:
        return f"the storage at {url} refused the request ({type(error).__name__}: {one_line(error)})"
    return one_line(error)


def _client_of(error: BaseException) -> str:
    return type(error).__module__.partition(".")[0]
