"""The simulator's object store: what etcd is to the apiserver, minus persistence and watches.

Objects are plain JSON dicts keyed by resource, namespace and name. Every write takes the next
cluster-wide resourceVersion. Knows nothing about validation, auth or controllers; not
thread-safe on its own (the simulator serialises access with one lock).
"""

from __future__ import annotations

import copy
import uuid

from sandbox.kube.objects import JsonDict


class Store:
    """In-memory objects with a global, monotonically increasing resourceVersion."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str, str], JsonDict] = {}
        self._version = 0

    @property
    def resource_version(self) -> str:
        """The resourceVersion of the latest write (what a list reports)."""
        return str(self._version)

    @staticmethod
    def new_uid() -> str:
        return str(uuid.uuid4())

    def get(self, resource: str, namespace: str, name: str) -> JsonDict | None:
        """A copy of the stored object, or None."""
        found = self._objects.get((resource, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list(self, resource: str, namespace: str | None = None) -> list[JsonDict]:
        """Copies of the objects of `resource` (in one namespace or all), by namespace and name."""
        return [
            copy.deepcopy(obj)
            for (kind, ns, _), obj in sorted(self._objects.items())
            if kind == resource and (namespace is None or ns == namespace)
        ]

    def put(self, resource: str, obj: JsonDict) -> JsonDict:
        """Store `obj` under the next resourceVersion and return a copy of what was stored."""
        self._version += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self._version)
        metadata = stored["metadata"]
        self._objects[(resource, metadata["namespace"], metadata["name"])] = stored
        return copy.deepcopy(stored)

    def put_if_changed(self, resource: str, obj: JsonDict) -> bool:
        """Store `obj` only if it differs from the stored version (resourceVersion aside)."""
        metadata = obj["metadata"]
        current = self._objects.get((resource, metadata["namespace"], metadata["name"]))
        if current is not None and _without_version(current) == _without_version(obj):
            return False
        self.put(resource, obj)
        return True

    def delete(self, resource: str, namespace: str, name: str) -> None:
        self._objects.pop((resource, namespace, name), None)
        self._version += 1


def _without_version(obj: JsonDict) -> JsonDict:
    metadata = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    return {**obj, "metadata": metadata}
