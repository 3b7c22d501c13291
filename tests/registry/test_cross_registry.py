"""Promotion into a separate production registry: streamed copy, or ACR ImportImage.

The ImportImage path runs the real `azure-mgmt-containerregistry` client against a
protocol-level fake of the ARM `importImage` operation (202 + Location polling)
that copies server-side with skopeo, as ACR would, between two real registries.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from azure.core.credentials import AccessToken

from sandbox.images import build_image, push, skopeo_copy
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.registry.acr_import import AcrImportTarget, import_image, management_client
from shared.registry.client import RegistryClient, RegistryEndpoint, RetrySettings
from shared.registry.errors import RegistryRequestError, TagConflict
from shared.registry.promotion import promote

IMPORT_PATH = ("/subscriptions/sub-1/resourceGroups/rg-prod/providers/"
               "Microsoft.ContainerRegistry/registries/prodacr/importImage")


class FakeArm(BaseHTTPRequestHandler):
    """ARM's importImage: checks the bearer token, copies with skopeo, answers via polling."""

    calls: ClassVar[list[dict[str, Any]]] = []
    refuse_with: ClassVar[int | None] = None
    tls: ClassVar[TlsFiles]
    target_host: ClassVar[str]

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeArm.calls.append({"path": self.path, "auth": self.headers.get("Authorization"),
                              "body": body})
        if not self.path.startswith(IMPORT_PATH + "?api-version="):
            return self._reply(404, {"error": {"code": "NotFound", "message": self.path}})
        if FakeArm.refuse_with:
            return self._reply(FakeArm.refuse_with, {"error": {
                "code": "AuthorizationFailed", "message": "no Microsoft.ContainerRegistry/"
                "registries/importImage/action permission"}})
        source = body["source"]
        for target_tag in body["targetTags"]:
            skopeo_copy(f"docker://{source['registryUri']}/{source['sourceImage']}",
                        f"docker://{FakeArm.target_host}/{target_tag}", tls=FakeArm.tls,
                        options=["--preserve-digests"])
        operation = uuid.uuid4().hex
        self._reply(202, None, {"Location": f"https://127.0.0.1:{self.server.server_port}"
                                            f"/operations/{operation}", "Retry-After": "0"})

    def do_GET(self) -> None:  # noqa: N802
        self._reply(200 if self.path.startswith("/operations/") else 404, {})

    def _reply(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        body = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class StaticToken:
    """A credential that hands out one bearer token (the fake only checks it is sent)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("arm-test-token", int(time.time()) + 3600)


@pytest.fixture(scope="module")
def prod_registry(tmp_path_factory: pytest.TempPathFactory,
                  tls_files: TlsFiles) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path_factory.mktemp("prod-registry"), tls_files) as running:
        yield running


@pytest.fixture
def fake_arm(tls_files: TlsFiles, prod_registry: LocalRegistry) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeArm)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    FakeArm.calls, FakeArm.refuse_with = [], None
    FakeArm.tls, FakeArm.target_host = tls_files, prod_registry.host
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def client_for(registry: LocalRegistry, tls: TlsFiles) -> RegistryClient:
    return RegistryClient(RegistryEndpoint(registry.endpoint, "anonymous", str(tls.ca)),
                          retry=RetrySettings(total=2, backoff_factor=0.05))


def image(tmp_path: Path, registry: LocalRegistry, repository: str, seed: str) -> str:
    layout = build_image(tmp_path / seed, layer_sizes=[2000, 70_000], seed=seed, tag="v1")
    return push(layout, registry, repository, "v1")


def test_streamed_copy_into_another_registry(tmp_path: Path, registry: LocalRegistry,
                                             prod_registry: LocalRegistry,
                                             tls_files: TlsFiles) -> None:
    digest = image(tmp_path, registry, "xreg-stream", "xreg-stream")
    source, target = client_for(registry, tls_files), client_for(prod_registry, tls_files)
    blob_bytes = sum(b.size for b in source.manifest("xreg-stream", digest).blobs)

    result = promote(source, "xreg-stream", digest, "prod/xreg-stream", "v1", target=target)

    assert (result.blobs_copied, result.bytes_copied, result.blobs_mounted) == (3, blob_bytes, 0)
    assert target.manifest_digest("prod/xreg-stream", "v1") == digest
    again = promote(source, "xreg-stream", digest, "prod/xreg-stream", "v1", target=target)
    assert again.unchanged and again.bytes_copied == 0
    # another tag of the same image finds every blob already there
    other = promote(source, "xreg-stream", digest, "prod/xreg-stream", "v1-copy", target=target)
    assert (other.blobs_present, other.blobs_copied, other.bytes_copied) == (3, 0, 0)


def test_acr_import_copies_server_side_by_digest(tmp_path: Path, registry: LocalRegistry,
                                                  prod_registry: LocalRegistry,
                                                  tls_files: TlsFiles, fake_arm: str) -> None:
    digest = image(tmp_path, registry, "xreg-import", "xreg-import")
    source, target = client_for(registry, tls_files), client_for(prod_registry, tls_files)
    where = AcrImportTarget("sub-1", "rg-prod", "prodacr", arm_endpoint=fake_arm)
    arm = management_client(where, StaticToken(), connection_verify=str(tls_files.ca))

    result = import_image(arm, where, source, "xreg-import", digest, target,
                          "prod/xreg-import", "v1", polling_interval=0)

    assert target.manifest_digest("prod/xreg-import", "v1") == digest
    assert result.bytes_copied == 0 and not result.unchanged
    (call,) = FakeArm.calls
    assert call["auth"] == "Bearer arm-test-token"
    assert call["body"] == {"source": {"registryUri": registry.host,
                                       "sourceImage": f"xreg-import@{digest}"},
                            "targetTags": ["prod/xreg-import:v1"], "mode": "NoForce"}

    again = import_image(arm, where, source, "xreg-import", digest, target,
                         "prod/xreg-import", "v1", polling_interval=0)
    assert again.unchanged and len(FakeArm.calls) == 1


def test_acr_import_refuses_a_conflict_and_forces_only_when_allowed(
        tmp_path: Path, registry: LocalRegistry, prod_registry: LocalRegistry,
        tls_files: TlsFiles, fake_arm: str) -> None:
    old = image(tmp_path, prod_registry, "prod/xreg-conflict", "old")
    new = image(tmp_path, registry, "xreg-conflict", "new")
    source, target = client_for(registry, tls_files), client_for(prod_registry, tls_files)
    where = AcrImportTarget("sub-1", "rg-prod", "prodacr", arm_endpoint=fake_arm)
    arm = management_client(where, StaticToken(), connection_verify=str(tls_files.ca))

    with pytest.raises(TagConflict, match=f"already points to {old}"):
        import_image(arm, where, source, "xreg-conflict", new, target,
                     "prod/xreg-conflict", "v1", polling_interval=0)
    assert FakeArm.calls == []

    import_image(arm, where, source, "xreg-conflict", new, target, "prod/xreg-conflict", "v1",
                 allow_overwrite=True, polling_interval=0)
    assert FakeArm.calls[0]["body"]["mode"] == "Force"
    assert target.manifest_digest("prod/xreg-conflict", "v1") == new


def test_acr_import_refused_by_arm_is_a_clear_error(tmp_path: Path, registry: LocalRegistry,
                                                    prod_registry: LocalRegistry,
                                                    tls_files: TlsFiles, fake_arm: str) -> None:
    digest = image(tmp_path, registry, "xreg-denied", "xreg-denied")
    source, target = client_for(registry, tls_files), client_for(prod_registry, tls_files)
    where = AcrImportTarget("sub-1", "rg-prod", "prodacr", arm_endpoint=fake_arm)
    arm = management_client(where, StaticToken(), connection_verify=str(tls_files.ca))
    FakeArm.refuse_with = 403

    with pytest.raises(RegistryRequestError) as refused:
        import_image(arm, where, source, "xreg-denied", digest, target, "prod/xreg-denied",
                     "v1", polling_interval=0)
    assert "ACR import failed" in str(refused.value)
    assert "importImage/action permission" in str(refused.value)
    assert "arm-test-token" not in str(refused.value)
    assert target.manifest_digest("prod/xreg-denied", "v1") is None
