"""Recording the release metrics (names in instruments.py). Each call is one measurement,
made once per real event by the caller (never on replay); none raises."""

from __future__ import annotations

import logging
from collections.abc import Callable

from shared.telemetry.instruments import ROLLBACK_KINDS, Instruments
from shared.telemetry.setup import pipeline

log = logging.getLogger(__name__)


def _record(what: str, measure: Callable[[Instruments], None]) -> None:
    instruments = pipeline().instruments
    if instruments is None:
        return
    try:
        measure(instruments)
    except Exception as error:  # noqa: BLE001 (telemetry must never fail a release)
        log.warning("metric %s not recorded: %s", what, type(error).__name__)


def release_ended(service: str, outcome: str, lead_time: float | None = None) -> None:
    """A release ended with `outcome`; `lead_time` (seconds, push to production healthy)
    when it completed."""
    def measure(m: Instruments) -> None:
        m.releases.add(1, {"release.service": service, "release.outcome": outcome})
        if lead_time is not None:
            m.lead_time.record(max(lead_time, 0.0), {"release.service": service})
    _record("release ended", measure)


def approval_waited(service: str, environment: str, outcome: str, seconds: float) -> None:
    """A gate closed after `seconds` with `outcome` (Approved, Rejected, Expired, …)."""
    _record("approval wait", lambda m: m.approval_wait.record(max(seconds, 0.0), {
        "release.service": service, "release.environment": environment,
        "release.outcome": outcome}))


def failure_detected(service: str, environment: str, seconds: float) -> None:
    """A deploy's failure was seen `seconds` after the deploy began."""
    _record("time to detect", lambda m: m.time_to_detect.record(max(seconds, 0.0), {
        "release.service": service, "release.environment": environment}))


def restored(service: str, environment: str, seconds: float) -> None:
    """An environment was restored `seconds` after its failure was seen."""
    _record("time to restore", lambda m: m.time_to_restore.record(max(seconds, 0.0), {
        "release.service": service, "release.environment": environment}))


def rolled_back(service: str, environment: str, kind: str) -> None:
    """An environment is rolled back; `kind` is one of ROLLBACK_KINDS (else "other")."""
    _record("rollback", lambda m: m.rollbacks.add(1, {
        "release.service": service, "release.environment": environment,
        "release.reason_kind": kind if kind in ROLLBACK_KINDS else "other"}))
