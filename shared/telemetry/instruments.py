"""The metrics a release records: names, units and the bounded attribute values they take."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Counter, Histogram, Meter

RELEASES = "release.outcomes"
LEAD_TIME = "release.lead_time"
APPROVAL_WAIT = "release.approval_wait"
TIME_TO_DETECT = "release.time_to_detect"
TIME_TO_RESTORE = "release.time_to_restore"
ROLLBACKS = "release.rollbacks"

# Why an environment was rolled back, as a bounded set (never the failure's text): the step
# whose failure started it, a person's (or the pause deadline's) decision, or a later
# environment's failure that rolled earlier ones back.
ROLLBACK_KINDS = frozenset({"deploy", "readiness", "verify", "analysis", "decided",
                            "later failure", "other"})


@dataclass(frozen=True)
class Instruments:
    """The release metrics, made once per meter."""

    releases: Counter
    lead_time: Histogram
    approval_wait: Histogram
    time_to_detect: Histogram
    time_to_restore: Histogram
    rollbacks: Counter

    @classmethod
    def of(cls, meter: Meter) -> Instruments:
        return cls(
            releases=meter.create_counter(RELEASES, "{release}", "Releases ended, by outcome"),
            lead_time=meter.create_histogram(
                LEAD_TIME, "s", "Push (registry event received) to production healthy"),
            approval_wait=meter.create_histogram(
                APPROVAL_WAIT, "s", "Gate opened to decided, by outcome"),
            time_to_detect=meter.create_histogram(
                TIME_TO_DETECT, "s", "Deploy started to its failure seen"),
            time_to_restore=meter.create_histogram(
                TIME_TO_RESTORE, "s", "Failure seen to the environment restored"),
            rollbacks=meter.create_counter(
                ROLLBACKS, "{rollback}", "Environments rolled back, by reason kind"))
