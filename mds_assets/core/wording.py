"""Counts and lists as people write them: "1 shard", "2 shards"; "a, b, c and 7 more"."""

from collections.abc import Sequence


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def first_names(names: Sequence[str], shown: int = 5) -> str:
    """The first `shown` names, then how many more: a message stays one readable line."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
