"""A release's trace and span ids: derived from what the release is, nothing random."""

from __future__ import annotations

import hashlib

from shared.telemetry import ids
from shared.telemetry.logs import scope_of


def test_the_trace_id_is_the_first_16_bytes_of_the_release_ids_sha256() -> None:
    expected = hashlib.sha256(b"release:delivery-0123").digest()[:16]
    assert ids.trace_id("delivery-0123") == int.from_bytes(expected, "big")
    assert ids.hex_trace_id("delivery-0123") == expected.hex()


def test_span_ids_are_stable_and_differ_by_each_part() -> None:
    first = ids.span_id("r1", "prod", "gate", 0)
    assert first == ids.span_id("r1", "prod", "gate", 0)
    others = {ids.span_id("r2", "prod", "gate", 0), ids.span_id("r1", "qa", "gate", 0),
              ids.span_id("r1", "prod", "deploy", 0), ids.span_id("r1", "prod", "gate", 1)}
    assert first not in others and len(others) == 4
    assert 0 < first < 2 ** 64


def test_the_parts_cannot_run_into_each_other() -> None:
    """("a", "bc") and ("ab", "c") are different spans: the parts are kept apart."""
    assert ids.span_id("r", "a", "bc") != ids.span_id("r", "ab", "c")


def test_environment_and_release_spans_have_their_own_ids() -> None:
    assert ids.environment_span_id("r1", "prod") == ids.span_id("r1", "prod", "environment", 0)
    assert ids.release_span_id("r1") == ids.span_id("r1", None, "release", 0)
    assert ids.release_span_id("r1") != ids.environment_span_id("r1", "")


def test_the_release_an_activity_request_names() -> None:
    """What a log record of an activity carries: the release of its request, or nothing."""
    assert scope_of({"releaseId": "r1", "service": "delivery", "environment": "qa"}) == {
        "release.id": "r1", "release.service": "delivery", "release.environment": "qa"}
    assert scope_of({"releaseId": "r1", "stage": {"name": "prod"}}) == {
        "release.id": "r1", "release.environment": "prod"}
    assert scope_of({"record": {"releaseId": "r1"}, "version": "v1"}) == {"release.id": "r1"}
    assert scope_of({"service": "delivery"}) is None
    assert scope_of({"releaseId": 7}) is None and scope_of("r1") is None


def test_a_retried_run_has_ids_of_its_own_in_the_same_trace() -> None:
    assert ids.span_id("r1", "qa", "deploy", 0, attempt=0) == ids.span_id("r1", "qa", "deploy")
    runs = {ids.span_id("r1", "qa", "deploy", 0, attempt) for attempt in range(3)}
    assert len(runs) == 3
    assert ids.release_span_id("r1", 1) != ids.release_span_id("r1")
    assert ids.environment_span_id("r1", "qa", 2) == ids.span_id("r1", "qa", "environment", 0, 2)
