"""`DeployTarget`: the one interface the deploy activities ask, whatever the target's kind.

Each method is one bounded step, so a strategy can be a plan of steps the orchestrator runs
with durable timers between them: `await_ready` looks for at most `max_wait` seconds and
returns "progressing" rather than sleep through a bake time. Results are plain JSON through
`to_dict`; a snapshot is opaque to the orchestrator except for what the kind documents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .evidence import Evidence


class Report(Protocol):
    """A step's result, as the activity hands it to the orchestrator."""

    def to_dict(self) -> dict[str, Any]: ...


class Readiness(Report, Protocol):
    """Where a rollout stands: `state` is "complete", "failed" (with the reason a person
    needs, e.g. CrashLoopBackOff, as soon as it is seen) or "progressing"."""

    @property
    def state(self) -> str: ...


class DeployTarget(Protocol):
    """What runs in one environment, and how to change it."""

    @property
    def kind(self) -> str:
        """The target kind this implementation serves ("deployment", "helm", …)."""

    def snapshot(self) -> Report:
        """What runs now, as `restore` will need it (image, revision, our annotations)."""

    def deploy(self, image: str, change_cause: str, release_id: str) -> Report:
        """Run `image` (repo@sha256:…); idempotent: nothing is written when it already runs."""

    def await_ready(self, deadline: float, max_wait: float) -> Readiness:
        """Look at readiness for at most `max_wait` seconds, or until `deadline` (epoch)."""

    def verify(self, checks: Sequence[Any], secrets: Mapping[str, Any]) -> Evidence:
        """Run the environment's checks; `secrets` is a secrets source spec, never values."""

    def restore(self, snapshot: Mapping[str, Any], change_cause: str | None) -> Report:
        """Put back what `snapshot` (from `snapshot`) recorded; idempotent like `deploy`."""
