"""A month of production history of `delivery`, written to the ledger as releases write it,
for the delivery page and `releasectl stats` tests.

Worked out by hand: 4 production deployments in the last 30 days (3 in the last 7), one
rolled back and restored 2 h later by the next release; lead times (from creation: no push
event rows) 3 h, 2 h and 1 h; 8 days back a release was refused before the cluster and
does not count; 40 days back one is outside the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sandbox.policy_text import SERVICE
from shared.ledger import Ledger, ReleaseRecord, StageState

HOUR = timedelta(hours=1)


def seed_delivery_history(ledger: Ledger, now: datetime | None = None) -> None:
    """Each release starts at 08:00 UTC on its day, so the page's daily bars (calendar
    days) hold the same releases at any time of day the test runs."""
    today = datetime.combine((now or datetime.now(UTC)).date(), time(8), tzinfo=UTC)

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

    def day(back: int) -> datetime:
        return today - timedelta(days=back)

    write("0.9.0", day(40), "Healthy", day(40) + HOUR)
    write("1.0.0", day(10), "Healthy", day(10) + 3 * HOUR)
    write("1.0.1", day(8), "Failed", day(8) + HOUR,
          "nothing deployed in prod: the promotion was refused")
    write("1.1.0", day(5), "RolledBack", day(5) + HOUR,
          "rollout failed: CrashLoopBackOff; restored v1.0.0")
    write("1.1.1", day(5) + HOUR, "Healthy", day(5) + 3 * HOUR)
    write("1.2.0", day(2), "Healthy", day(2) + HOUR)
