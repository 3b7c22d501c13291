"""Releases this process has seen exist: a redelivery of their digest is a duplicate at once.

A digest claim is never undone and its release, once it exists, stays (only an operator's
purge removes it), so remembering "this release exists" can never be wrong in a way the
ledger would not be too. Bounded: the oldest entries are forgotten first, and a forgotten
release simply takes the full path (claim, then look-up) again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

CAPACITY = 20_000


class KnownReleases:
    """A bounded set of release keys, least recently seen forgotten first."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        if key not in self._keys:
            return False
        self._keys.move_to_end(key)
        return True

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: Hashable) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)

    def clear(self) -> None:
        self._keys.clear()


KNOWN_RELEASES = KnownReleases()
