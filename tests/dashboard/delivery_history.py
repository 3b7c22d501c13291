"""A month of production history of `delivery`, written to the ledger as releases write it,
for the delivery page and `releasectl stats` tests.

Worked out by hand: 4 production deployments in the last 30 days (3 in the last 7), one
rolled back and restored 2 h later by the next release; lead times (from creation: no push
event rows) 3 h, 2 h and 1 h; 8 days back a release was refused before the cluster and
does not count; 40 days back one is outside the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sandbox.policy_text import SERVICE
from shared.ledger import Ledger, ReleaseRecord, StageState

HOUR = timedelta(hours=1)


def seed_delivery_history(ledger: Ledger, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)

    def write(name: str, created: datetime, state: str, finished: datetime,
              detail: str | None = None) -> None:
        outcome = "Completed" if state == "Healthy" else state
        ledger.upsert_release(ReleaseRecord(
            f"{SERVICE}-{name}", SERVICE, f"v{name}", "sha256:" + name.encode().hex().ljust(
                64, "0"), outcome, created, finished, environment="prod", step=outcome,
            reason=detail, stages={
                "qa": StageState("Healthy", created, created + timedelta(minutes=5)),
                "prod": StageState(state, finished - timedelta(minutes=20), finished,
                                   detail)}))

    write("0.9.0", now - timedelta(days=40), "Healthy", now - timedelta(days=40) + HOUR)
    write("1.0.0", now - timedelta(days=10), "Healthy", now - timedelta(days=10) + 3 * HOUR)
    write("1.0.1", now - timedelta(days=8), "Failed", now - timedelta(days=8) + HOUR,
          "nothing deployed in prod: the promotion was refused")
    write("1.1.0", now - timedelta(days=5), "RolledBack", now - timedelta(days=5) + HOUR,
          "rollout failed: CrashLoopBackOff; restored v1.0.0")
    write("1.1.1", now - timedelta(days=5) + HOUR, "Healthy",
          now - timedelta(days=5) + 3 * HOUR)
    write("1.2.0", now - timedelta(days=2) - HOUR, "Healthy", now - timedelta(days=2))
