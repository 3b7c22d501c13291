"""One registry over the OCI distribution API, through the `azure-containerregistry` client.

Requests go through the SDK's pipeline (its challenge authentication, TLS
settings and retry policy: 429 with Retry-After, 5xx and connection resets,
with bounded backoff). Only `/v2` calls are used, so the same code serves ACR
and any OCI registry. Failures surface as the typed errors of `errors.py`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import urlencode, urljoin, urlparse, urlsplit, urlunsplit

from azure.containerregistry import ContainerRegistryClient, DigestValidationError
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResponseNotReadError,
    ServiceRequestError,
)
from azure.core.rest import HttpRequest, HttpResponse

from .errors import (
    DigestMismatch,
    ImageNotFound,
    RegistryError,
    RegistryRequestError,
    RegistryUnavailable,
    UnsupportedManifestError,
)
from .manifests import ACCEPT, Descriptor, Manifest, UnsupportedManifest, parse_manifest
from .references import check_digest, check_reference, check_repository

ACR_AUDIENCE = "https://containerregistry.azure.net"
CHUNK_SIZE = 8 * 1024 * 1024
_TRANSIENT = {408, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class RetrySettings:
    """Bounded retries for transient failures (azure-core RetryPolicy settings), and
    optionally the socket timeouts and a limit on one call's time, retries included."""

    total: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 8.0
    connection_timeout: float | None = None  # seconds; azure-core's default is 300
    read_timeout: float | None = None
    deadline: float | None = None  # seconds for one call with its retries and waits

    def as_kwargs(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "retry_total": self.total, "retry_connect": self.total,
            "retry_read": self.total, "retry_status": self.total,
            "retry_backoff_factor": self.backoff_factor, "retry_backoff_max": self.backoff_max}
        for name, value in (("connection_timeout", self.connection_timeout),
                            ("read_timeout", self.read_timeout), ("timeout", self.deadline)):
            if value is not None:
                settings[name] = value
        return settings


# For calls a webhook waits on (Event Grid gives up after 30 s): few retries, short waits.
QUICK_RETRY = RetrySettings(total=2, backoff_factor=0.2, backoff_max=1.0,
                            connection_timeout=3.0, read_timeout=5.0, deadline=10.0)


@dataclass(frozen=True)
class RegistryEndpoint:
    """Where a registry is and how to reach it (no secrets: identities, not keys)."""

    url: str
    auth: Literal["azure", "anonymous"] = "azure"
    ca_bundle: str | None = None
    managed_identity_client_id: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegistryEndpoint:
        url = str(data.get("url") or "")
        if not url.startswith(("https://", "http://")):
            url = "https://" + url
        parsed = urlparse(url)
        if not parsed.hostname or parsed.path not in ("", "/"):
            raise ValueError(f"registry url {data.get('url')!r} must be a host, e.g."
                             " myacr.azurecr.io or https://127.0.0.1:5000")
        auth = data.get("auth", "azure")
        if auth not in ("azure", "anonymous"):
            raise ValueError(f"registry auth {auth!r} must be 'azure' or 'anonymous'")
        return cls(url=f"{parsed.scheme}://{parsed.netloc}", auth=auth,
                   ca_bundle=data.get("caBundle"),
                   managed_identity_client_id=data.get("managedIdentityClientId"))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {"url": data["url"], "auth": data["auth"], "caBundle": data["ca_bundle"],
                "managedIdentityClientId": data["managed_identity_client_id"]}

    @property
    def host(self) -> str:
        return urlparse(self.url).netloc


class RegistryClient:
    """Reads and writes manifests and blobs of one registry."""

    def __init__(self, endpoint: RegistryEndpoint, *, credential: Any = None,
                 retry: RetrySettings | None = None, **transport: Any) -> None:
        self.endpoint = endpoint
        if credential is None and endpoint.auth == "azure":
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential(
                managed_identity_client_id=endpoint.managed_identity_client_id)
        self._sdk = ContainerRegistryClient(
            endpoint.url, credential, audience=ACR_AUDIENCE,
            connection_verify=endpoint.ca_bundle or True,
            **(retry or RetrySettings()).as_kwargs(), **transport)
        # The public client has no raw /v2 calls (tag lists, HEAD, mounts, uploads by Location);
        # its generated client sends them through the same authentication and retry pipeline.
        self._pipeline = self._sdk._client

    def close(self) -> None:
        self._sdk.close()

    # --- manifests -------------------------------------------------------------------------

    def manifest(self, repository: str, reference: str) -> Manifest:
        """Fetch and parse a manifest; a digest reference is verified against the bytes."""
        check_repository(repository)
        check_reference(reference)
        response = self._send("GET", f"/v2/{repository}/manifests/{reference}", repository,
                              reference, headers={"Accept": ACCEPT})
        try:
            manifest = parse_manifest(response.read(), response.headers.get("Content-Type"))
        except UnsupportedManifest as bad:
            raise UnsupportedManifestError(self.endpoint.host, repository, reference,
                                           str(bad)) from bad
        served = response.headers.get("Docker-Content-Digest")
        if reference.startswith("sha256:") and manifest.digest != reference or \
                served and served != manifest.digest:
            raise DigestMismatch(self.endpoint.host, repository, reference,
                                 f"manifest bytes hash to {manifest.digest}, registry said"
                                 f" {served}")
        return manifest

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag or digest currently resolves to, or None when absent (HEAD only)."""
        check_repository(repository)
        check_reference(reference)
        response = self._send("HEAD", f"/v2/{repository}/manifests/{reference}", repository,
                              reference, headers={"Accept": ACCEPT}, missing_ok=True)
        if response.status_code == 404:
            return None
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:  # registries need not send it on HEAD; fall back to the bytes
            return self.manifest(repository, reference).digest
        return digest

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> str:
        """Publish the manifest's exact bytes under a tag or its digest; return the digest."""
        check_reference(reference)
        response = self._send("PUT", f"/v2/{repository}/manifests/{reference}", repository,
                              reference, content=manifest.raw,
                              headers={"Content-Type": manifest.media_type})
        stored = response.headers.get("Docker-Content-Digest", manifest.digest)
        if stored != manifest.digest:
            raise DigestMismatch(self.endpoint.host, repository, reference,
                                 f"registry stored {stored}, expected {manifest.digest}")
        return stored

    def list_tags(self, repository: str, page_size: int = 100) -> list[str]:
        """Every tag of a repository, following `Link: <…>; rel="next"` pagination."""
        check_repository(repository)
        tags: list[str] = []
        url: str | None = f"/v2/{repository}/tags/list?n={page_size}"
        while url:
            response = self._send("GET", url, repository, "",
                                  headers={"Accept": "application/json"})
            tags.extend(response.json().get("tags") or [])
            url = next_page_link(response.headers.get("Link"))
        return tags

    # --- blobs -----------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self._send("HEAD", f"/v2/{repository}/blobs/{check_digest(digest)}",
                              repository, digest, missing_ok=True)
        return response.status_code != 404

    def mount_blob(self, repository: str, digest: str, source_repository: str) -> str | None:
        """Cross-repository mount. None when mounted (201); else the upload Location (202)."""
        query = urlencode({"mount": check_digest(digest), "from": source_repository})
        response = self._send("POST", f"/v2/{repository}/blobs/uploads/?{query}", repository,
                              digest)
        if response.status_code == 201:
            return None
        return self._location(response, repository, digest)

    def copy_blob(self, source: RegistryClient, source_repository: str, repository: str,
                  blob: Descriptor, upload_location: str | None = None) -> int:
        """Stream a blob from `source` into `repository` in bounded chunks; return bytes sent."""
        location = upload_location or self._location(
            self._send("POST", f"/v2/{repository}/blobs/uploads/", repository, blob.digest),
            repository, blob.digest)
        hasher = hashlib.sha256()
        sent = 0
        for chunk in source.read_blob(source_repository, blob.digest):
            response = self._send(
                "PATCH", location, repository, blob.digest, content=chunk,
                headers={"Content-Type": "application/octet-stream",
                         "Content-Range": f"{sent}-{sent + len(chunk) - 1}"})
            location = self._location(response, repository, blob.digest)
            hasher.update(chunk)
            sent += len(chunk)
        if "sha256:" + hasher.hexdigest() != blob.digest:
            raise DigestMismatch(source.endpoint.host, source_repository, blob.digest,
                                 "blob content does not match its digest")
        self._send("PUT", _with_query(location, digest=blob.digest), repository, blob.digest,
                   headers={"Content-Length": "0"})
        return sent

    def read_blob(self, repository: str, digest: str) -> Iterator[bytes]:
        """The blob's bytes in chunks of at most CHUNK_SIZE (ranged GETs, digest verified)."""
        with self._errors(repository, digest):
            stream = self._sdk.download_blob(repository, digest)
            buffer = bytearray()
            for piece in stream:
                buffer.extend(piece)
                while len(buffer) >= CHUNK_SIZE:
                    yield bytes(buffer[:CHUNK_SIZE])
                    del buffer[:CHUNK_SIZE]
            if buffer:
                yield bytes(buffer)

    # --- plumbing --------------------------------------------------------------------------

    def _send(self, method: str, url: str, repository: str, reference: str, *,
              headers: dict[str, str] | None = None, content: bytes | None = None,
              missing_ok: bool = False) -> HttpResponse:
        request = HttpRequest(method, url, headers=headers or {}, content=content)
        with self._errors(repository, reference):
            response = self._pipeline.send_request(request)
        status = response.status_code
        if status < 400 or (missing_ok and status == 404):
            return response
        raise self._status_error(response, repository, reference)

    @contextmanager
    def _errors(self, repository: str, reference: str) -> Iterator[None]:
        host = self.endpoint.host
        try:
            yield
        except RegistryError:
            raise
        except DigestValidationError as bad:
            raise DigestMismatch(host, repository, reference, str(bad)) from bad
        except HttpResponseError as failed:
            if failed.response is not None:
                raise self._status_error(failed.response, repository, reference) from failed
            raise RegistryRequestError(host, repository, reference, failed.message) from failed
        except ServiceRequestError as unreachable:
            raise RegistryUnavailable(host, repository, reference,
                                      f"cannot connect: {_first_line(unreachable)}") from None
        except AzureError as failed:
            raise RegistryUnavailable(host, repository, reference,
                                      _first_line(failed)) from None

    def _status_error(self, response: Any, repository: str, reference: str) -> RegistryError:
        host, status = self.endpoint.host, response.status_code
        detail = f"HTTP {status}{_oci_error(response)}"
        if status == 404:
            return ImageNotFound(host, repository, reference, f"not found ({detail})", status)
        if status in (401, 403):
            return RegistryRequestError(host, repository, reference,
                                        f"not authorized ({detail}): check the identity's"
                                        " pull/push rights on this repository", status)
        if status in _TRANSIENT:
            return RegistryUnavailable(host, repository, reference,
                                       f"still failing after retries ({detail})", status)
        return RegistryRequestError(host, repository, reference, detail, status)

    def _location(self, response: HttpResponse, repository: str, reference: str) -> str:
        location = response.headers.get("Location")
        if not location:
            raise RegistryRequestError(self.endpoint.host, repository, reference,
                                       f"HTTP {response.status_code} without a Location header")
        return urljoin(self.endpoint.url + "/", location)


def next_page_link(header: str | None) -> str | None:
    """The target of `rel="next"` in a Link header, or None."""
    for part in (header or "").split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
            return target.strip().strip("<>")
    return None


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit(parts._replace(query=query))


def _oci_error(response: Any) -> str:
    """`: CODE message` from an OCI error body, if there is one."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return f": {first.get('code', '')} {first.get('message', '')}".rstrip()
    except (ValueError, AttributeError, IndexError, TypeError):  # not an OCI error document
        return ""
    except ResponseNotReadError:  # a streamed download's error: its body was never read
        return ""


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
