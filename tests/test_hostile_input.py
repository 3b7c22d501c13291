"""Hostile requests through HTTP at the real app in devhost, its ledger on Azurite.

The webhook's handshakes never stand in for its token: every handshake header with any body
but the handshake's own is 401 and records nothing. Every JSON route reads its body through
the one bounded reader: random and deeply nested bodies get a 4xx with a one-line reason,
never a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost.host import Host
from devhost.testing import MGMT
from sandbox.azurite import Azurite
from shared.approvals.identity import IdentityError, principal_from_headers
from shared.ledger.aio import close_clients
from shared.ledger.store import Ledger
from tests.policy.policy_samples import ONE_QA_SERVICE

REPO = Path(__file__).resolve().parents[1]
PAYLOADS = Path(__file__).parent / "ingest" / "payloads"
TOKEN = "hostile-test-token-" + uuid.uuid4().hex
POLICY = ONE_QA_SERVICE
DIGEST = "sha256:" + "ab" * 32
PUSH = {"id": "push-1", "timestamp": "2026-11-22T04:10:12Z", "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": DIGEST, "repository": "delivery", "tag": "1.0.1"},
        "request": {"host": "myacr.azurecr.io"}}
VALIDATION = json.loads((PAYLOADS / "eventgrid_validation.json").read_text())[0]
EVENT_GRID_PUSH = {"id": "eg-1", "subject": "delivery:1.0.1", "eventTime": "2026-11-22T04:10:12Z",
                   "eventType": "Microsoft.ContainerRegistry.ImagePushed", "data": PUSH,
                   "dataVersion": "1", "metadataVersion": "1"}
CLOUD_PUSH = {"specversion": "1.0", "id": "ce-1", "source": "/registries/myacr",
              "type": "Microsoft.ContainerRegistry.ImagePushed", "data": PUSH}

# Every header a handshake (Event Grid's or CloudEvents') arrives with, in several spellings.
HANDSHAKE_HEADERS: list[dict[str, str]] = [
    {"aeg-event-type": "SubscriptionValidation"},
    {"AEG-EVENT-TYPE": "subscriptionvalidation"},
    {"aeg-event-type": " SubscriptionValidation "},
    {"aeg-event-type": "Notification"},
    {"WebHook-Request-Origin": "eventgrid.azure.net"},
    {"WebHook-Request-Origin": "eventgrid.azure.net", "WebHook-Request-Rate": "120"},
    {"ce-specversion": "1.0", "ce-type": "Microsoft.ContainerRegistry.ImagePushed",
     "ce-id": "b-1", "ce-source": "/registries/myacr"},
    {"aeg-event-type": "SubscriptionValidation",
     "WebHook-Request-Origin": "eventgrid.azure.net"},
]
# Bodies that are not one lone validation event: each would act, or say something, if read.
NOT_A_HANDSHAKE: list[Any] = [
    PUSH, {"events": [{"id": "oci-1", "action": "push", "target": PUSH["target"],
                       "request": {"host": "myacr.azurecr.io"}}]},
    [EVENT_GRID_PUSH], EVENT_GRID_PUSH, CLOUD_PUSH, [CLOUD_PUSH],
    [VALIDATION, EVENT_GRID_PUSH], [EVENT_GRID_PUSH, VALIDATION], [VALIDATION, VALIDATION],
    {**VALIDATION, "eventType": "Microsoft.ContainerRegistry.ImagePushed"},
    {"id": "ping-1", "action": "ping"}, [], {}, "[[[[", "not json",
]


class App:
    """The app in devhost, an HTTP session and the ledger its requests would write."""

    def __init__(self, host: Host, http: aiohttp.ClientSession, ledger: Ledger) -> None:
        self.host, self.http, self.ledger = host, http, ledger

    async def send(self, method: str, path: str, body: bytes | str = b"",
                   headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
        data = body.encode() if isinstance(body, str) else body
        async with self.http.request(method, self.host.base_url.rstrip("/") + path, data=data,
                                     headers=headers or {}) as response:
            return response.status, await response.text(), dict(response.headers)

    async def instances(self) -> list[dict[str, Any]]:
        async with self.http.get(self.host.base_url.rstrip("/") + MGMT + "/instances") as got:
            return await got.json()


@pytest.fixture
def app_env(tmp_path: Path, azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    prefix = "h" + uuid.uuid4().hex[:10]
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("LEDGER_TABLE_PREFIX", prefix)
    monkeypatch.setenv("RELEASE_POLICY_FILE", str(policy))
    monkeypatch.setenv("REGISTRY_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("APPROVAL_SIGNING_KEY", "hostile-tests-signing-key-" + "k" * 32)
    monkeypatch.setenv("APPROVAL_BASE_URL", "http://approvals.test")
    return Ledger.from_connection_string(azurite.connection_string, prefix)


def serve(tmp_path: Path, ledger: Ledger, scenario: Callable[[App], Awaitable[None]]) -> None:
    async def main() -> None:
        host = Host(REPO, port=0, data_dir=tmp_path / "devhost")
        await host.start()
        try:
            async with aiohttp.ClientSession() as http:
                await scenario(App(host, http, ledger))
        finally:
            await host.stop()
            await close_clients()

    asyncio.run(main())


def nested(depth: int, kind: str = "[") -> bytes:
    """`depth` levels of arrays or objects, the innermost empty."""
    if kind == "[":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"{}" + b"}" * depth


def test_a_handshake_header_never_replaces_the_token(tmp_path: Path, app_env: Ledger) -> None:
    async def scenario(app: App) -> None:
        refused = []
        for headers in HANDSHAKE_HEADERS:
            for body in NOT_A_HANDSHAKE:
                text = body if isinstance(body, str) else json.dumps(body)
                for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ""}):
                    code, answer, _ = await app.send("POST", "/api/registry/events", text,
                                                     {**headers, **auth})
                    refused.append((code, answer))
        assert set(refused) == {(401, "")}, [r for r in refused if r != (401, "")][:3]
        # The handshake alone: its header and one validation event, answered with its code.
        for body in (VALIDATION, [VALIDATION]):
            code, answer, _ = await app.send("POST", "/api/registry/events", json.dumps(body),
                                             {"aeg-event-type": "SubscriptionValidation"})
            assert (code, json.loads(answer)) == (
                200, {"validationResponse": VALIDATION["data"]["validationCode"]})
        # The same body without Event Grid's header is no handshake either.
        code, _, _ = await app.send("POST", "/api/registry/events", json.dumps([VALIDATION]))
        assert code == 401
        # OPTIONS answers the CloudEvents handshake and reads no body.
        code, _, headers = await app.send("OPTIONS", "/api/registry/events", json.dumps(PUSH),
                                          {"WebHook-Request-Origin": "eventgrid.azure.net"})
        assert code == 200 and headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"

        assert app.ledger.events() == [] and app.ledger.events(unmatched=True) == []
        assert app.ledger.releases("delivery") == []
        assert await app.instances() == []

        # With the token, a validation event among other events is a clear 400.
        code, answer, _ = await app.send(
            "POST", "/api/registry/events", json.dumps([VALIDATION, EVENT_GRID_PUSH]),
            {"Authorization": f"Bearer {TOKEN}", "aeg-event-type": "SubscriptionValidation"})
        assert code == 400
        assert json.loads(answer)["error"] == ("a subscription validation event must be the"
                                               " delivery's only event")

    serve(tmp_path, app_env, scenario)


# The JSON routes, each with what makes a request reach its body.
RELEASE = "delivery-" + "ab" * 8
JSON_ROUTES: list[tuple[str, dict[str, str]]] = [
    ("/api/registry/events", {"Authorization": f"Bearer {TOKEN}"}),
    ("/api/orchestrators/hello_sequence", {}),
    (f"/api/releases/{RELEASE}/rollback", {}),
    (f"/api/releases/{RELEASE}/redeploy", {}),
    (f"/api/releases/{RELEASE}/resolve", {}),
    (f"/api/releases/{RELEASE}/retry", {}),
    (f"/api/releases/{RELEASE}/approvals/qa?token=x", {}),
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["environment", "reason", "decision", "comment", "id", "action",
                         "target", "events", "eventType", "data", "specversion"]),
        inner, max_size=4),
    max_leaves=12)
BODIES = st.one_of(
    st.binary(max_size=120),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.tuples(st.integers(1, 20_000), st.sampled_from(["[", "{"])).map(
        lambda spec: nested(*spec)),
    st.sampled_from([b"NaN", b"[Infinity]", b'{"a": -Infinity}', b"1" * 5000,
                     b'"\\ud800"', nested(33), nested(32)]))


def test_every_json_route_answers_hostile_bodies_with_a_one_line_4xx(
        tmp_path: Path, app_env: Ledger) -> None:
    bodies: list[bytes] = []

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(BODIES)
    def collect(body: bytes) -> None:
        bodies.append(body)

    collect()
    bodies += [nested(5000), nested(5000, "{"), nested(200), b"[" * 5000]

    async def scenario(app: App) -> None:
        for route, headers in JSON_ROUTES:
            for body in bodies:
                code, answer, _ = await app.send("POST", route, body, {
                    **headers, "Content-Type": "application/json"})
                assert code < 500, (route, body[:80], code, answer[:300])
                if code >= 400:
                    reason = json.loads(answer)["error"]
                    assert reason and "\n" not in reason and "Traceback" not in reason
            for depth, kind in ((5000, "["), (33, "{")):
                code, answer, _ = await app.send("POST", route, nested(depth, kind), {
                    **headers, "Content-Type": "application/json"})
                assert code == 400, (route, depth, code, answer[:200])
                assert "nested deeper than 32 levels" in json.loads(answer)["error"]
        assert app.ledger.releases("delivery") == []

    serve(tmp_path, app_env, scenario)


@pytest.mark.parametrize("document", [nested(5000), nested(5000, "{"), nested(40),
                                      b'{"claims": [], "x": NaN}'])
def test_the_sign_in_header_is_read_by_the_bounded_reader(document: bytes) -> None:
    import base64

    header = base64.b64encode(document).decode()
    with pytest.raises(IdentityError) as refused:
        principal_from_headers({"X-MS-CLIENT-PRINCIPAL": header})
    assert "\n" not in str(refused.value)
    assert "X-MS-CLIENT-PRINCIPAL" in str(refused.value)
