"""`GET /api/metrics/delivery` end to end: figures of a real release, and bad queries.

Real parts (see release_stack.py): devhost runs the app, Azurite the ledger, docker-registry
the images, the Kubernetes simulator QA and production. A version pushed and approved goes
to production; the figures then count it, its lead time measured from the push event the
ledger recorded to its production stage becoming healthy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from release_stack import Stack, run_scenario

from devhost.testing import free_port
from sandbox.azurite import Azurite
from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.server import KubeSimulator
from sandbox.policy_text import SERVICE
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.ledger.connection import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

NO_DATA = {
    "deploymentFrequency": {"deployments": 0, "perDay": 0.0},
    "leadTime": {"changes": 0, "medianSeconds": None, "p90Seconds": None},
    "changeFailureRate": {"deployments": 0, "failed": 0, "rate": None},
    "timeToRestore": {"restored": 0, "unrestored": 0, "medianSeconds": None},
}
BAD_QUERIES = [
    ("days=0", "days must be a whole number from 1 to 365, not '0'"),
    ("days=366", "days must be a whole number from 1 to 365, not '366'"),
    ("days=7.5", "days must be a whole number from 1 to 365, not '7.5'"),
    ("service=nobody", "unknown service 'nobody'; the policy names delivery"),
    ("service=a/b", "service 'a/b' is not a service name"),
    ("window=30", "unknown query parameter 'window'; expected service, days"),
]


def one_line_error(body: dict) -> str:
    assert set(body) == {"error"} and "\n" not in body["error"], body
    return body["error"]


def test_a_release_in_production_is_counted_with_its_lead_time(
        tmp_path: Path, registry: LocalRegistry, tls_files: TlsFiles, azurite: Azurite,
        kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(s: Stack) -> None:
        code, before = await s.get("/api/metrics/delivery")
        assert code == 200 and before["days"] == 30 and before["service"] is None
        assert before["all"] == NO_DATA
        assert before["services"] == {SERVICE: {"production": "prod", **NO_DATA}}

        release_id, digest = await s.release("v1.0.0")
        claim = s.ledger.digest_claim(SERVICE, digest)
        assert claim is not None and claim.release_id == release_id
        event = s.ledger.get_event(claim.event_id, service=SERVICE)
        row = s.ledger.get_release(release_id, service=SERVICE)
        assert event is not None and row is not None
        healthy_at = row.stages["prod"].finished
        assert healthy_at is not None
        lead = round((healthy_at - event.received_at).total_seconds(), 3)

        code, after = await s.get(f"/api/metrics/delivery?service={SERVICE}&days=7")
        assert code == 200 and (after["days"], after["service"]) == (7, SERVICE)
        figures = after["services"][SERVICE]
        assert figures["deploymentFrequency"] == {"deployments": 1, "perDay": round(1 / 7, 4)}
        assert figures["leadTime"] == {"changes": 1, "medianSeconds": lead, "p90Seconds": lead}
        assert figures["changeFailureRate"] == {"deployments": 1, "failed": 0, "rate": 0.0}
        assert figures["timeToRestore"] == NO_DATA["timeToRestore"]  # nothing failed
        assert after["all"] == {k: v for k, v in figures.items() if k != "production"}

        for query, reason in BAD_QUERIES:
            code, body = await s.get(f"/api/metrics/delivery?{query}")
            assert (code, one_line_error(body)) == (400, reason), query

    run_scenario(tmp_path, registry, tls_files, azurite, kube, monkeypatch, scenario)


@dataclass
class ClosedStorage:
    """Stands in for Azurite: a storage account on a port nobody listens on."""

    port: int

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};"
                f"AccountKey={DEV_ACCOUNT_KEY};"
                f"TableEndpoint=http://127.0.0.1:{self.port}/{DEV_ACCOUNT_NAME}")


def test_bad_queries_are_refused_before_the_ledger_is_read(
        tmp_path: Path, registry: LocalRegistry, tls_files: TlsFiles, kube: KubeSimulator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the ledger unreachable a good query is a 503, each bad one still its 400."""
    async def scenario(s: Stack) -> None:
        for query, reason in BAD_QUERIES:
            code, body = await s.get(f"/api/metrics/delivery?{query}")
            assert (code, one_line_error(body)) == (400, reason), query
        code, body = await s.get("/api/metrics/delivery?days=30")
        assert code == 503 and one_line_error(body).startswith("ledger unavailable: ")

    run_scenario(tmp_path, registry, tls_files, ClosedStorage(free_port()),  # type: ignore[arg-type]
                 kube, monkeypatch, scenario)
