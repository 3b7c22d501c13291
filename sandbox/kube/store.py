"""The simulator's object store: what etcd is to the apiserver, with a short event history.

Objects are plain JSON dicts keyed by resource, namespace and name. Every write takes the next
cluster-wide resourceVersion and is remembered as a watch event (ADDED, MODIFIED, DELETED) for
the last `HISTORY` writes. `save(path)` / `load(path)` keep the objects in one JSON file.
Knows nothing about validation, auth or controllers; not thread-safe on its own (the simulator
serialises access with one lock).
"""

from __future__ import annotations

import json
import os
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.kube.objects import JsonDict

HISTORY = 1_000  # watch events kept (as the apiserver's watch cache); older: 410 Gone


@dataclass(frozen=True)
class Event:
    """One write as a watch sees it; `obj` is the stored object (never mutated)."""

    version: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: str
    obj: JsonDict


class Store:
    """In-memory objects with a global, monotonically increasing resourceVersion."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str, str], JsonDict] = {}
        self._version = 0
        self._events: deque[Event] = deque(maxlen=HISTORY)
        self._saved_version = -1

    @property
    def resource_version(self) -> str:
        """The resourceVersion of the latest write (what a list reports)."""
        return str(self._version)

    @property
    def version(self) -> int:
        return self._version

    @staticmethod
    def new_uid() -> str:
        return str(uuid.uuid4())

    def get(self, resource: str, namespace: str, name: str) -> JsonDict | None:
        """A copy of the stored object, or None."""
        found = self._objects.get((resource, namespace, name))
        return _clone(found) if found is not None else None

    def list(self, resource: str, namespace: str | None = None) -> list[JsonDict]:
        """Copies of the objects of `resource` (in one namespace or all), by namespace and name."""
        return [
            _clone(obj)
            for (kind, ns, _), obj in sorted(self._objects.items())
            if kind == resource and (namespace is None or ns == namespace)
        ]

    def put(self, resource: str, obj: JsonDict) -> JsonDict:
        """Store `obj` under the next resourceVersion and return a copy of what was stored."""
        self._version += 1
        stored = _clone(obj)
        stored["metadata"]["resourceVersion"] = str(self._version)
        metadata = stored["metadata"]
        key = (resource, metadata["namespace"], metadata["name"])
        kind = "MODIFIED" if key in self._objects else "ADDED"
        self._objects[key] = stored
        self._events.append(Event(self._version, kind, resource, stored))
        return _clone(stored)

    def put_if_changed(self, resource: str, obj: JsonDict) -> bool:
        """Store `obj` only if it differs from the stored version (resourceVersion aside)."""
        metadata = obj["metadata"]
        current = self._objects.get((resource, metadata["namespace"], metadata["name"]))
        if current is not None and _without_version(current) == _without_version(obj):
            return False
        self.put(resource, obj)
        return True

    def delete(self, resource: str, namespace: str, name: str) -> JsonDict | None:
        """Remove an object; returns it as last stored (with the deletion's resourceVersion)."""
        found = self._objects.pop((resource, namespace, name), None)
        self._version += 1
        if found is None:
            return None
        gone = _clone(found)
        gone["metadata"]["resourceVersion"] = str(self._version)
        self._events.append(Event(self._version, "DELETED", resource, gone))
        return _clone(gone)

    def events_since(self, version: int) -> list[Event] | None:
        """Writes after `version`, oldest first; None when history no longer reaches back."""
        if version >= self._version:
            return []
        if not self._events or self._events[0].version > version + 1:
            return None
        return [event for event in self._events if event.version > version]

    # --- persistence -------------------------------------------------------------------------

    def save(self, path: Path) -> bool:
        """Write every object to `path` (atomically, 0600) if anything changed since the last
        save."""
        if self._saved_version == self._version:
            return False
        document = {"resourceVersion": self._version, "objects": [
            {"resource": resource, "object": obj}
            for (resource, _, _), obj in sorted(self._objects.items())
        ]}
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        # Helm's release records hold the values a chart was given: private, like a Secret
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(document, file, separators=(",", ":"))
        os.replace(partial, path)
        self._saved_version = self._version
        return True

    def load(self, path: Path) -> int:
        """Replace the objects with those saved in `path` (if it exists); how many were read."""
        if not path.exists():
            return 0
        try:
            document = json.loads(path.read_text())
            objects = {}
            for entry in document["objects"]:
                obj, resource = entry["object"], entry["resource"]
                metadata = obj["metadata"]
                objects[(str(resource), str(metadata["namespace"]), str(metadata["name"]))] = obj
            version = int(document["resourceVersion"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path} is not a simulator state file ({error!r}): move it "
                             "away to start empty") from error
        self._objects, self._version = objects, version
        self._events.clear()
        self._saved_version = self._version
        return len(self._objects)


def _clone(value: Any) -> Any:
    """A deep copy of plain JSON data (several times faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    return value


def _without_version(obj: JsonDict) -> JsonDict:
    metadata = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    return {**obj, "metadata": metadata}
