"""Generated OCI images for tests and benchmarks, and pushing them with skopeo.

`build_image` writes an OCI image layout whose layers are deterministic pseudo-random
content of a chosen size (an AES-CTR keystream keyed by the seed), streamed to disk in 1 MiB
chunks (a 1 GiB layer needs no 1 GiB of memory). Each layer is a real tar+gzip (one file,
deflate "stored" blocks, so no CPU spent on compression): skopeo 1.9 gzips a layer that is
not gzip on push, which would change its digest. `push` and `skopeo_copy` run
`skopeo copy`; nothing here speaks the registry API.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
import tempfile
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from sandbox.tools import require_tool

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
DEFAULT_PLATFORM = "linux/amd64"
CHUNK = 1 << 20
STDERR_TAIL_LINES = 15


class SkopeoError(RuntimeError):
    """`skopeo copy` failed."""


@dataclass(frozen=True)
class OciLayout:
    """An image written by `build_image`: where it is and what it contains."""

    path: Path
    tag: str
    digest: str
    media_type: str
    layer_digests: list[str]
    total_bytes: int
    manifests: dict[str, str] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        """The skopeo source reference, `oci:PATH:TAG`."""
        return f"oci:{self.path}:{self.tag}"


@dataclass(frozen=True)
class _Blob:
    digest: str
    size: int
    media_type: str

    def descriptor(self, **extra: object) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def build_image(
    directory: Path,
    *,
    layer_sizes: list[int],
    platforms: list[str] | None = None,
    seed: str = "x",
    tag: str = "latest",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> OciLayout:
    """Write an image (or, with `platforms`, an image index) tagged `tag` into an OCI layout.

    `layer_sizes` are bytes of pseudo-random content per layer, derived from seed, platform
    and index; each blob is about 2 KiB larger (tar and gzip framing). Other tags already in
    the layout are kept. `labels` go into every platform's config (`config.Labels`), as a
    Dockerfile `LABEL` puts them; `annotations` on the top manifest (the index, with
    `platforms`), as `buildx --annotation` does.
    """
    blobs_dir = directory / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    written: dict[str, int] = {}
    layer_digests: list[str] = []
    manifests: dict[str, _Blob] = {}
    for platform in platforms or [DEFAULT_PLATFORM]:
        layers = [
            _write_layer(blobs_dir, size, f"{seed}/{platform}/{index}", f"layer-{index}.bin")
            for index, size in enumerate(layer_sizes)
        ]
        config = _write_json(blobs_dir, OCI_CONFIG, {
            **_platform_fields(platform),
            "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
            "config": {"Labels": dict(labels)} if labels else {},
        })
        manifest = _write_json(blobs_dir, OCI_MANIFEST, {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [blob.descriptor() for blob, _ in layers],
            **({"annotations": dict(annotations)} if annotations and not platforms else {}),
        })
        manifests[platform] = manifest
        layer_digests += [blob.digest for blob, _ in layers]
        written.update({blob.digest: blob.size for blob in (config, manifest)})
        written.update({blob.digest: blob.size for blob, _ in layers})
    if platforms:
        top = _write_json(blobs_dir, OCI_INDEX, {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                blob.descriptor(platform=_platform_fields(platform))
                for platform, blob in manifests.items()
            ],
            **({"annotations": dict(annotations)} if annotations else {}),
        })
        written[top.digest] = top.size
    else:
        top = manifests[DEFAULT_PLATFORM]
    _tag_in_index(directory, top, tag)
    return OciLayout(
        path=directory,
        tag=tag,
        digest=top.digest,
        media_type=top.media_type,
        layer_digests=layer_digests,
        total_bytes=sum(written.values()),
        manifests={platform: blob.digest for platform, blob in manifests.items()},
    )


def push(
    layout: OciLayout,
    registry: LocalRegistry | str,
    repository: str,
    tag: str | None = None,
    *,
    docker_v2s2: bool = False,
    tls: TlsFiles | None = None,
) -> str:
    """Push every platform of `layout` to `registry` (or `host:port`); return the digest it holds.

    With `docker_v2s2` the registry receives a Docker schema 2 manifest (a manifest list for
    several platforms), whose digest differs from `layout.digest`. `tls` defaults to the
    registry's; without one, skopeo trusts only the system CAs.
    """
    if isinstance(registry, LocalRegistry):
        host, tls = registry.host, tls or registry.tls
    else:
        host = registry.removeprefix("https://").rstrip("/")
    destination = f"docker://{host}/{repository}:{tag or layout.tag}"
    options = ["--format", "v2s2"] if docker_v2s2 else ["--preserve-digests"]
    digest, _ = _copy(layout.reference, destination, tls=tls, options=options)
    return digest


def skopeo_copy(
    source: str, destination: str, *, tls: TlsFiles | None = None, options: Sequence[str] = ()
) -> float:
    """Run `skopeo copy --all SOURCE DESTINATION` (transport-prefixed refs); return seconds taken.

    `tls` is trusted for whichever side is `docker://`; `options` are extra `skopeo copy` flags.
    """
    _, seconds = _copy(source, destination, tls=tls, options=options)
    return seconds


def _copy(
    source: str, destination: str, *, tls: TlsFiles | None, options: Sequence[str]
) -> tuple[str, float]:
    skopeo = require_tool("skopeo", "skopeo")
    command = [skopeo, "--insecure-policy", "copy", "--all", "--quiet", *options]
    if tls is not None:
        if source.startswith("docker://"):
            command += ["--src-cert-dir", str(tls.cert_dir())]
        if destination.startswith("docker://"):
            command += ["--dest-cert-dir", str(tls.cert_dir())]
    with tempfile.TemporaryDirectory(prefix="skopeo-") as scratch:
        digest_file = Path(scratch) / "digest"
        command += ["--digestfile", str(digest_file), source, destination]
        started = time.perf_counter()
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            env={**os.environ, "TMPDIR": scratch},
        )
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-STDERR_TAIL_LINES:])
            raise SkopeoError(
                f"skopeo copy {source} -> {destination} failed (exit {result.returncode}):\n"
                f"{tail}"
            )
        return digest_file.read_text().strip(), seconds


def _platform_fields(platform: str) -> dict[str, str]:
    os_name, architecture, *variant = platform.split("/")
    fields = {"architecture": architecture, "os": os_name}
    if variant:
        fields["variant"] = variant[0]
    return fields


def _write_layer(blobs_dir: Path, size: int, seed: str, name: str) -> tuple[_Blob, str]:
    """Stream a gzipped one-file tar of `size` random bytes into the store; also its diff_id."""
    keystream = Cipher(algorithms.AES(hashlib.sha256(seed.encode()).digest()), modes.CTR(bytes(16)))
    random_bytes = keystream.encryptor()
    zeros = bytes(CHUNK)
    member = tarfile.TarInfo(name)
    member.size, member.mode, member.mtime = size, 0o644, 0
    padding = -size % tarfile.BLOCKSIZE
    diff_id = hashlib.sha256()
    with _BlobWriter(blobs_dir) as out:
        gzip = zlib.compressobj(0, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

        def feed(data: bytes) -> None:
            diff_id.update(data)
            out.write(gzip.compress(data))

        feed(member.tobuf(tarfile.PAX_FORMAT))
        remaining = size
        while remaining:
            chunk = min(CHUNK, remaining)
            feed(random_bytes.update(zeros[:chunk]))
            remaining -= chunk
        feed(bytes(padding + 2 * tarfile.BLOCKSIZE))
        out.write(gzip.flush())
    return _Blob(out.digest, out.size, OCI_LAYER_GZIP), f"sha256:{diff_id.hexdigest()}"


def _write_json(blobs_dir: Path, media_type: str, document: dict[str, object]) -> _Blob:
    data = json.dumps(document, separators=(",", ":")).encode()
    with _BlobWriter(blobs_dir) as out:
        out.write(data)
    return _Blob(out.digest, out.size, media_type)


def _tag_in_index(directory: Path, top: _Blob, tag: str) -> None:
    index_path = directory / "index.json"
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if index_path.exists():
        index = json.loads(index_path.read_text())
    index["manifests"] = [
        entry for entry in index["manifests"]
        if entry.get("annotations", {}).get(REF_NAME) != tag
    ] + [top.descriptor(annotations={REF_NAME: tag})]
    index_path.write_text(json.dumps(index, indent=2))


class _BlobWriter:
    """Writes one blob to a temp file in the store, then renames it to its sha256."""

    def __init__(self, blobs_dir: Path) -> None:
        self._dir = blobs_dir
        self._hash = hashlib.sha256()
        handle, self._partial = tempfile.mkstemp(dir=blobs_dir, prefix=".partial-")
        self._file: BinaryIO = os.fdopen(handle, "wb")
        self.size = 0
        self.digest = ""

    def __enter__(self) -> _BlobWriter:
        return self

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._file.close()
        if exc_type is not None:
            os.unlink(self._partial)
            return
        os.chmod(self._partial, 0o644)
        os.replace(self._partial, self._dir / self._hash.hexdigest())
        self.digest = f"sha256:{self._hash.hexdigest()}"
