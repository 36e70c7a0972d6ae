"""Cutting a sequence into consecutive groups: by count, or by total size."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K")


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last one shorter), read lazily."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def size_groups(
    keys: Iterable[K], sizes: dict[K, int], limit: int, most: int | None = None
) -> Iterator[list[K]]:
    """Consecutive groups whose sizes add up to at most ``limit`` (or one that is bigger
    on its own), of at most ``most`` keys when given."""
    group: list[K] = []
    total = 0
    for key in keys:
        size = sizes[key]
        if group and (total + size > limit or (most is not None and len(group) >= most)):
            yield group
            group, total = [], 0
        group.append(key)
        total += size
    if group:
        yield group
