"""Key -> position in a protobuf list, kept valid across inserts and removals without a rescan.

A rebuild is O(n) (about 10 ms for 20,000 nodes): too slow to do after every insert or removal.
So the map records each insert/removal as a shift and applies the shifts recorded since an entry
was written when it is read; after many shifts the map is dropped and rebuilt on the next read.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

MAX_SHIFTS = 32


class PositionMap:
    def __init__(self, keys: Callable[[], Iterable[Hashable]]):
        self._keys = keys
        self._entries: dict[Hashable, tuple[int, int]] | None = None  # key -> (position, shifts seen)
        self._shifts: list[tuple[int, int]] = []  # (position, +1 insert / -1 removal)

    def get(self, key: Hashable) -> int | None:
        if self._entries is None:
            self._entries = {k: (i, 0) for i, k in enumerate(self._keys())}
            self._shifts = []
        entry = self._entries.get(key)
        if entry is None:
            return None
        pos, seen = entry
        for at, delta in self._shifts[seen:]:
            if delta > 0 and pos >= at:
                pos += 1
            elif delta < 0 and pos > at:
                pos -= 1
        return pos

    def inserted(self, pos: int, key: Hashable) -> None:
        if self._record(pos, +1):
            self._entries[key] = (pos, len(self._shifts))  # type: ignore[index]

    def removed(self, pos: int, key: Hashable) -> None:
        if self._entries is not None:
            self._entries.pop(key, None)
        self._record(pos, -1)

    def renamed(self, pos: int, old: Hashable, new: Hashable) -> None:
        if self._entries is not None and old != new:
            self._entries.pop(old, None)
            self._entries[new] = (pos, len(self._shifts))

    def _record(self, pos: int, delta: int) -> bool:
        if self._entries is None:
            return False
        if len(self._shifts) >= MAX_SHIFTS:
            self._entries = None  # cheaper to rebuild on the next read than to keep shifting
            return False
        self._shifts.append((pos, delta))
        return True
