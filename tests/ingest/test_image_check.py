"""What ingestion asks the registry, against the real docker-registry (and its fault proxy),
and the pure rules that turn the answer into an outcome."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest

from sandbox.faults import FaultProxy
from sandbox.registry import LocalRegistry
from sandbox.registry_push import HELM_CHART, HELM_CONFIG, RegistryPusher
from sandbox.tls import TlsFiles
from shared.ingest.decisions import decide, image_verdict
from shared.ingest.image_check import BLOB, ClientRegistry, ImageFacts, quick_client
from shared.ingest.payloads import RegistryEvent
from shared.policy.loader import parse_policy
from shared.registry import registries
from shared.registry.client import QUICK_RETRY, RegistryClient, RegistryEndpoint, RetrySettings
from shared.registry.errors import RegistryRequestError, RegistryUnavailable
from shared.registry.manifests import OCI_INDEX, OCI_MANIFEST
from tests.policy.policy_samples import ONE_QA_SERVICE

MADE_UP = "sha256:" + hashlib.sha256(b"never pushed").hexdigest()
FAST = RetrySettings(total=2, backoff_factor=0.01, backoff_max=0.05)


@pytest.fixture
def repo() -> str:
    return "check-" + uuid.uuid4().hex[:10]


@pytest.fixture
def pusher(registry: LocalRegistry) -> RegistryPusher:
    return RegistryPusher.of(registry)


def ask(client: RegistryClient, repository: str, digest: str, tag: str | None = "v1"
        ) -> ImageFacts:
    return asyncio.run(ClientRegistry(lambda _: client).image(
        client.endpoint, repository, digest, tag))


@pytest.fixture
def direct(registry: LocalRegistry, tls_files: TlsFiles) -> RegistryClient:
    return RegistryClient(RegistryEndpoint(registry.endpoint, "anonymous", str(tls_files.ca)),
                          retry=FAST)


@pytest.fixture
def proxied(fault_proxy: FaultProxy, tls_files: TlsFiles) -> RegistryClient:
    return RegistryClient(RegistryEndpoint(fault_proxy.endpoint, "anonymous",
                                           str(tls_files.ca)), retry=FAST)


def test_an_image_in_the_repository_whose_tag_names_it(
        direct: RegistryClient, pusher: RegistryPusher, repo: str) -> None:
    digest = pusher.push_image(repo, "v1")
    assert ask(direct, repo, digest) == ImageFacts(True, None, OCI_MANIFEST, True)
    assert ask(direct, repo, digest, tag=None) == ImageFacts(True, None, OCI_MANIFEST, None)


def test_an_index_is_an_image(direct: RegistryClient, pusher: RegistryPusher, repo: str) -> None:
    index = pusher.push_index(repo, "v1", pusher.push_images(repo, ["amd64", "arm64"]))
    assert ask(direct, repo, index) == ImageFacts(True, None, OCI_INDEX, True)


def test_a_tag_that_moved_on_or_is_gone_is_not_current(
        direct: RegistryClient, pusher: RegistryPusher, repo: str) -> None:
    first = pusher.push_image(repo, "v1", "first")
    second = pusher.push_image(repo, "v1", "second")
    assert ask(direct, repo, first).tag_current is False
    assert ask(direct, repo, second).tag_current is True
    assert ask(direct, repo, first, tag="never-pushed").tag_current is False


def test_one_get_while_the_tag_names_the_digest_two_once_it_moved_or_went(
        proxied: RegistryClient, pusher: RegistryPusher, fault_proxy: FaultProxy,
        repo: str) -> None:
    first = pusher.push_image(repo, "v1", "first")
    for tag, digest, current, gets in (("v1", first, True, 1), ("gone", first, False, 2)):
        fault_proxy.reset_stats()
        assert ask(proxied, repo, digest, tag).tag_current is current
        assert fault_proxy.stats().by_method == {"GET": gets}
    second = pusher.push_image(repo, "v1", "second")
    fault_proxy.reset_stats()
    assert ask(proxied, repo, first) == ImageFacts(True, None, OCI_MANIFEST, False)
    assert fault_proxy.stats().by_method == {"GET": 2}
    assert ask(proxied, repo, second).tag_current is True


def test_a_digest_not_in_this_repository_is_not_found(
        direct: RegistryClient, pusher: RegistryPusher, repo: str) -> None:
    elsewhere = pusher.push_image(repo + "-other", "v1")
    pusher.push_image(repo, "v1")
    assert ask(direct, repo, MADE_UP) == ImageFacts(False)
    assert ask(direct, repo, elsewhere) == ImageFacts(False)
    assert ask(direct, repo + "-never-pushed", MADE_UP) == ImageFacts(False)


def test_a_blob_is_not_a_manifest(direct: RegistryClient, pusher: RegistryPusher,
                                  repo: str) -> None:
    pusher.push_image(repo, "v1")
    layer, _ = pusher.push_blob(repo, b"some layer")
    assert ask(direct, repo, layer) == ImageFacts(False, BLOB)


def test_a_helm_chart_is_found_but_not_runnable(
        direct: RegistryClient, pusher: RegistryPusher, repo: str) -> None:
    chart = pusher.push_artifact(repo, "v1", HELM_CONFIG, HELM_CHART)
    facts = ask(direct, repo, chart)
    assert facts.found and facts.problem == f"a Helm chart (config type {HELM_CONFIG})"


def test_a_registry_failing_after_retries_raises_unavailable(
        proxied: RegistryClient, pusher: RegistryPusher, fault_proxy: FaultProxy,
        repo: str) -> None:
    digest = pusher.push_image(repo, "v1")
    fault_proxy.inject(503, times=100, path_contains=f"/v2/{repo}/")
    with pytest.raises(RegistryUnavailable, match="still failing after retries"):
        ask(proxied, repo, digest)
    fault_proxy.reset()
    fault_proxy.inject(502, times=1, method="GET")
    fault_proxy.drop_connections(times=1, method="HEAD")
    assert ask(proxied, repo, digest).found  # one failure each is retried away


def test_a_refusal_is_a_request_error_not_a_verdict(
        proxied: RegistryClient, pusher: RegistryPusher, fault_proxy: FaultProxy,
        repo: str) -> None:
    digest = pusher.push_image(repo, "v1")
    fault_proxy.inject(403, times=10, path_contains=f"/v2/{repo}/")
    with pytest.raises(RegistryRequestError, match="not authorized"):
        ask(proxied, repo, digest)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_a_registry_that_never_answers_times_out_as_unavailable(
        silent_port: int, tls_files: TlsFiles) -> None:
    quick = RetrySettings(total=1, backoff_factor=0.01, connection_timeout=0.3,
                          read_timeout=0.3, deadline=2.0)
    client = RegistryClient(RegistryEndpoint(f"https://127.0.0.1:{silent_port}", "anonymous",
                                             str(tls_files.ca)), retry=quick)
    with pytest.raises(RegistryUnavailable, match="timed out"):
        ask(client, "anything", MADE_UP)


def test_the_webhook_client_is_cached_per_endpoint_with_few_retries(
        registry: LocalRegistry, tls_files: TlsFiles) -> None:
    endpoint = RegistryEndpoint(registry.endpoint, "anonymous", str(tls_files.ca))
    client = quick_client(endpoint)
    assert client is quick_client(endpoint)
    assert client is not registries.for_endpoint(endpoint)  # activities retry longer
    kwargs = QUICK_RETRY.as_kwargs()
    assert kwargs["retry_total"] == 2 and kwargs["read_timeout"] <= 10
    assert kwargs["timeout"] < 30  # Event Grid gives up on a delivery after 30 s


# --- the pure rules ----------------------------------------------------------------------------

WHERE = "myacr.azurecr.io/delivery"


@pytest.mark.parametrize("facts, verdict", [
    (ImageFacts(True, None, OCI_MANIFEST, True), None),
    (ImageFacts(True, None, OCI_MANIFEST, False), None),  # a moved tag does not refuse
    (ImageFacts(False), ("rejected", f"digest {MADE_UP} is not in {WHERE}")),
    (ImageFacts(False, BLOB), ("rejected", f"digest {MADE_UP} is not in {WHERE}: {BLOB}")),
    (ImageFacts(True, "a Helm chart (config type x)", OCI_MANIFEST),
     ("ignored", f"{WHERE}@{MADE_UP} is a Helm chart (config type x), not an image a cluster"
                 " can run")),
])
def test_image_verdict(facts: ImageFacts, verdict: tuple[str, str] | None) -> None:
    decision = image_verdict(facts, WHERE, MADE_UP)
    assert (decision and (decision.outcome, decision.reason)) == verdict


def test_a_push_with_an_invalid_tag_is_rejected_before_the_registry_is_asked() -> None:
    policy = parse_policy(ONE_QA_SERVICE)
    for tag, outcome in (("v1.0.0", "start"), ("../v1", "rejected"), ("x" * 129, "rejected"),
                         (".hidden", "rejected")):
        event = RegistryEvent("e", "acr-webhook", "push", "myacr.azurecr.io", "delivery",
                              tag=tag, digest=MADE_UP)
        assert decide(event, policy).outcome == outcome, tag
