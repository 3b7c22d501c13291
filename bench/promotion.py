"""Benchmark of in-process promotion (cross-repository mounts) vs `skopeo copy` and a naive copy.

Builds images of about 1 MiB, 100 MiB and 1 GiB (10 layers each) in a temp dir, pushes each to
`bench-src-<size>` of a local docker-registry over TLS, and promotes it by digest to fresh
repositories of the same registry three ways (skopeo with a primed and a cold cache):

- ours: `shared.registry.promotion.promote` (every blob mounted concurrently, manifests copied);
- skopeo: `skopeo copy --all docker://…@digest docker://…:v1` (a process per copy). skopeo
  mounts only blobs its blob-info cache (/var/lib/containers/cache for root) already places in
  a repository of that registry host, e.g. because skopeo pushed or read them there before;
  otherwise it downloads and uploads them. The timed `skopeo` runs have that cache primed by
  the push, as a CI runner that pushed the image would; `skopeo-cold` is the first copy seen
  under another name of the same registry (`localhost:PORT`), as a fresh runner would do it.
  Image content is unique per run (seeded with a random token), so no earlier run's cache
  entries can help (the cache keeps this run's entries; they point at nothing afterwards);
- naive: the Azure SDK's `ContainerRegistryClient`, each blob `download_blob`-ed whole into a
  temp file and `upload_blob`-ed, then `set_manifest` with the same bytes. docker-registry
  answers an upload with an absolute `Location`, which the SDK glues onto the endpoint as a
  path (`/https://…`, answered 301); a one-line request policy here undoes that, nothing else
  of the SDK is changed.

Times are taken against the registry directly; requests and blob bytes by repeating one run
of each through `sandbox.faults.FaultProxy`, so proxy overhead stays out of the timings.
Baselines and aims: /work/shared/notes/benchmarks.md. Prints figures and aims, asserts
nothing, and ends with one `promotion: key=value ...` summary line. Does not cover promotion
into another registry or ACR ImportImage.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.containerregistry import ContainerRegistryClient
from azure.core.pipeline.policies import SansIOHTTPPolicy
from benchkit import print_aims  # before the project: sets the import path

from sandbox.faults import FaultProxy, ProxyStats
from sandbox.images import build_image, push, skopeo_copy
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles, make_throwaway_cert
from shared.registry.client import ACR_AUDIENCE, RegistryClient, RegistryEndpoint
from shared.registry.promotion import promote

MIB = 1 << 20
SIZES = {"1mib": MIB, "100mib": 100 * MIB, "1gib": 1024 * MIB}
LAYERS = 10
OURS_RUNS = 5
SKOPEO_RUNS = 5
NAIVE_RUNS = {"1mib": 3, "100mib": 3, "1gib": 1}
MIN_FREE_BYTES = 5 * 1024 * MIB  # one layout + the registry's copy + a staged layer, with room
TAG = "v1"
METHODS = ("ours", "skopeo", "skopeo-cold", "naive")


@dataclass
class Measured:
    """One method at one image size: timed runs, and the traffic of one counted run."""

    seconds: list[float] = field(default_factory=list)
    stats: ProxyStats | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def requests(self) -> int:
        return self.stats.requests if self.stats else 0

    @property
    def blob_bytes(self) -> int:
        if self.stats is None:
            return 0
        return self.stats.blob_request_bytes + self.stats.blob_response_bytes


@dataclass
class Image:
    size: str
    repository: str
    digest: str
    total_bytes: int
    setup_s: float


@dataclass
class Stack:
    """The registry, the counting proxy in front of it, and a client of each kind for both."""

    registry: LocalRegistry
    proxy: FaultProxy
    tls: TlsFiles
    scratch: Path
    ours: RegistryClient
    ours_counted: RegistryClient
    sdk: ContainerRegistryClient
    sdk_counted: ContainerRegistryClient


# --- the three ways to promote ------------------------------------------------------------------

def run_ours(client: RegistryClient, image: Image, target: str) -> None:
    result = promote(client, image.repository, image.digest, target, TAG)
    if result.blobs_mounted != LAYERS + 1 or result.blobs_copied or result.bytes_copied:
        raise RuntimeError(f"promotion of {image.repository} to {target} did not mount every"
                           f" blob: {result.to_dict()}")


def run_skopeo(host: str, tls: TlsFiles, image: Image, target: str) -> float:
    return skopeo_copy(f"docker://{host}/{image.repository}@{image.digest}",
                       f"docker://{host}/{target}:{TAG}", tls=tls)


class AbsoluteUploadLocation(SansIOHTTPPolicy):
    """Undo the SDK's `{endpoint}/{Location}` when the registry's Location is absolute.

    The SDK's upload operations format their URL as "/{nextBlobUuidLink}" (ACR sends a
    relative Location); docker-registry sends `https://host/v2/…`, which ends up as the path
    `/https://host/v2/…` and is answered 301. Send the request to the Location itself.
    """

    def on_request(self, request: Any) -> None:
        url = request.http_request.url
        for scheme in ("/https://", "/http://"):
            embedded = url.find(scheme, len("https://"))
            if embedded != -1:
                request.http_request.url = url[embedded + 1:]
                return


def run_naive(sdk: ContainerRegistryClient, image: Image, target: str, scratch: Path) -> None:
    got = sdk.get_manifest(image.repository, image.digest)
    raw = json.dumps(got.manifest, separators=(",", ":")).encode()  # as build_image wrote it
    if f"sha256:{hashlib.sha256(raw).hexdigest()}" != image.digest:
        raise RuntimeError(f"{image.repository}: re-serialised manifest does not hash to"
                           f" {image.digest}; the naive copy would publish another digest")
    for blob in [got.manifest["config"], *got.manifest["layers"]]:
        with tempfile.TemporaryFile(dir=scratch) as staged:
            for chunk in sdk.download_blob(image.repository, blob["digest"]):
                staged.write(chunk)
            staged.seek(0)
            uploaded, _ = sdk.upload_blob(target, staged)
        if uploaded != blob["digest"]:
            raise RuntimeError(f"{target}: uploaded {blob['digest']} landed as {uploaded}")
    landed = sdk.set_manifest(target, io.BytesIO(raw), tag=TAG, media_type=got.media_type)
    if landed != image.digest:
        raise RuntimeError(f"{target}:{TAG} landed as {landed}, expected {image.digest}")


# --- measuring ----------------------------------------------------------------------------------

def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def counted(proxy: FaultProxy, action: Callable[[], Any]) -> ProxyStats:
    proxy.reset_stats()
    action()
    return proxy.stats()


def prepare_images(stack: Stack, layouts: Path) -> list[Image]:
    images = []
    token = secrets.token_hex(4)
    for size, total in SIZES.items():
        started = time.perf_counter()
        layout = build_image(layouts / size, layer_sizes=[total // LAYERS] * LAYERS,
                             seed=f"bench-{size}-{token}", tag="src")
        repository = f"bench-src-{size}"
        digest = push(layout, stack.registry, repository, "src")
        shutil.rmtree(layout.path)  # the registry has it now; keep the disk peak to one copy
        images.append(Image(size, repository, digest, layout.total_bytes,
                            time.perf_counter() - started))
    return images


def measure(stack: Stack, image: Image) -> dict[str, Measured]:
    figures = {method: Measured() for method in METHODS}
    registry, proxy, tls = stack.registry, stack.proxy, stack.tls
    size = image.size
    for n in range(max(OURS_RUNS, SKOPEO_RUNS)):  # interleaved: drift on a shared host hits both
        if n < OURS_RUNS:
            figures["ours"].seconds.append(timed(
                lambda n=n: run_ours(stack.ours, image, f"prod/bench-{size}-{n}")))
        if n < SKOPEO_RUNS:
            figures["skopeo"].seconds.append(
                run_skopeo(registry.host, tls, image, f"prod/skopeo-{size}-{n}"))
            landed = stack.ours.manifest_digest(f"prod/skopeo-{size}-{n}", TAG)
            if landed != image.digest:
                raise RuntimeError(f"skopeo copy landed {landed}, expected {image.digest}")
    figures["skopeo-cold"].seconds.append(  # another host name: a scope skopeo knows nothing of
        run_skopeo(f"localhost:{registry.port}", tls, image, f"prod/skopeo-cold-{size}"))
    for n in range(NAIVE_RUNS[size]):
        figures["naive"].seconds.append(timed(
            lambda n=n: run_naive(stack.sdk, image, f"prod/naive-{size}-{n}", stack.scratch)))

    figures["ours"].stats = counted(proxy, lambda: run_ours(
        stack.ours_counted, image, f"prod/bench-{size}-counted"))
    # The proxy's host:port is new to skopeo's cache too: its first copy is a cold one, and
    # the blobs it read are then known there, so the second is counted like the timed runs.
    figures["skopeo-cold"].stats = counted(proxy, lambda: run_skopeo(
        proxy.host, tls, image, f"prod/skopeo-cold-{size}-counted"))
    figures["skopeo"].stats = counted(proxy, lambda: run_skopeo(
        proxy.host, tls, image, f"prod/skopeo-{size}-counted"))
    figures["naive"].stats = counted(proxy, lambda: run_naive(
        stack.sdk_counted, image, f"prod/naive-{size}-counted", stack.scratch))
    return figures


def warm_up(stack: Stack, image: Image) -> None:
    """Open the clients' connections and load skopeo once; none of this is timed."""
    run_ours(stack.ours, image, "warmup/ours")
    run_ours(stack.ours_counted, image, "warmup/ours-counted")
    run_skopeo(stack.registry.host, stack.tls, image, "warmup/skopeo")
    run_naive(stack.sdk, image, "warmup/naive", stack.scratch)
    run_naive(stack.sdk_counted, image, "warmup/naive-counted", stack.scratch)


def sdk_client(endpoint: str, tls: TlsFiles) -> ContainerRegistryClient:
    return ContainerRegistryClient(endpoint, audience=ACR_AUDIENCE,
                                   connection_verify=str(tls.ca),
                                   per_call_policies=[AbsoluteUploadLocation()])


def check_disk(directory: Path) -> int:
    free = shutil.disk_usage(directory).free
    if free < MIN_FREE_BYTES:
        raise SystemExit(f"promotion bench: {directory} has {free / 1024**3:.1f} GiB free; it"
                         f" needs {MIN_FREE_BYTES / 1024**3:.0f} GiB (images up to 1 GiB)")
    return free


# --- report ---------------------------------------------------------------------------------------

def by_method(stats: ProxyStats | None) -> str:
    if stats is None:
        return ""
    return " ".join(f"{method}:{count}" for method, count in sorted(stats.by_method.items()))


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) if i in (0, 1, len(row) - 1)
                        else cell.rjust(widths[i]) for i, cell in enumerate(row)).rstrip())


def report(images: list[Image], results: dict[str, dict[str, Measured]]) -> str:
    rows = [("size", "method", "runs", "median s", "min s", "requests", "blob bytes moved",
             "requests by method")]
    for image in images:
        for method in METHODS:
            m = results[image.size][method]
            rows.append((image.size, method, str(len(m.seconds)), f"{m.median:.3f}",
                         f"{min(m.seconds):.3f}", str(m.requests), f"{m.blob_bytes:,}",
                         by_method(m.stats)))
    table(rows)
    print()
    print("images: " + ", ".join(f"{i.size} = {i.total_bytes:,} bytes in {LAYERS} layers"
                                 f" (build+push {i.setup_s:.1f} s)" for i in images))
    print("skopeo = skopeo copy with its blob-info cache primed by the push (mounts);"
          " skopeo-cold = first copy\n  under a host name skopeo has no cache entries for"
          " (it downloads and uploads every blob)")
    print("naive = Azure SDK download_blob to a temp file + upload_blob + set_manifest, blob by"
          " blob; upload_blob\n  needs the bench's AbsoluteUploadLocation policy against"
          " docker-registry (else 301 on its Location)")
    print("times: direct to the registry; requests and bytes: one more run through the"
          " counting proxy")
    print()

    ours = {i.size: results[i.size]["ours"] for i in images}
    skopeo = {i.size: results[i.size]["skopeo"] for i in images}
    cold = {i.size: results[i.size]["skopeo-cold"] for i in images}
    naive = {i.size: results[i.size]["naive"] for i in images}
    ours_blob_bytes = sum(m.blob_bytes for m in ours.values())
    flat_ratio = ours["1gib"].median / ours["1mib"].median
    ratios = {size: ours[size].median / skopeo[size].median for size in SIZES}
    aims = [
        (f"zero blob bytes moved by our promotion: {ours_blob_bytes:,} bytes over "
         f"{len(SIZES)} sizes", ours_blob_bytes == 0),
        (f"our time flat in size, 1 GiB within 2x of 1 MiB: {ours['1gib'].median:.3f} s vs"
         f" {ours['1mib'].median:.3f} s = {flat_ratio:.2f}x", flat_ratio <= 2),
    ]
    for size in SIZES:
        aims.append((f"ours faster than skopeo at {size}: {ours[size].median:.3f} s vs"
                     f" {skopeo[size].median:.3f} s = {ratios[size]:.2f}x", ratios[size] < 1))
    print_aims(aims)
    print()
    return ("promotion: "
            + " ".join(f"ours_{s}_s={ours[s].median:.3f}" for s in SIZES) + " "
            + " ".join(f"skopeo_{s}_s={skopeo[s].median:.3f}" for s in SIZES) + " "
            + " ".join(f"skopeo_cold_{s}_s={cold[s].median:.3f}" for s in SIZES) + " "
            + " ".join(f"naive_{s}_s={naive[s].median:.3f}" for s in SIZES)
            + f" flat_ratio={flat_ratio:.2f} ours_blob_bytes={ours_blob_bytes}"
            f" ours_requests={ours['1gib'].requests} skopeo_requests={skopeo['1gib'].requests}"
            f" skopeo_blob_bytes={sum(m.blob_bytes for m in skopeo.values())}"
            f" skopeo_cold_1gib_blob_bytes={cold['1gib'].blob_bytes}"
            f" naive_1gib_blob_bytes={naive['1gib'].blob_bytes}"
            f" ratio_vs_skopeo_1mib={ratios['1mib']:.2f}"
            f" ratio_vs_skopeo_1gib={ratios['1gib']:.2f}"
            f" ratio_vs_naive_1gib={ours['1gib'].median / naive['1gib'].median:.4f}")


def main() -> None:
    work = Path(tempfile.gettempdir())
    free = check_disk(work)
    print(f"temp dir {work}: {free / 1024**3:.0f} GiB free")
    with tempfile.TemporaryDirectory(prefix="promotion-bench-", dir=work) as temp:
        root = Path(temp)
        tls = make_throwaway_cert(root / "tls")
        scratch = root / "staged"
        scratch.mkdir()
        with LocalRegistry(root / "registry", tls) as registry, \
                FaultProxy(registry.endpoint, tls) as proxy:
            stack = Stack(
                registry, proxy, tls, scratch,
                ours=RegistryClient(RegistryEndpoint(registry.endpoint, "anonymous",
                                                     str(tls.ca))),
                ours_counted=RegistryClient(RegistryEndpoint(proxy.endpoint, "anonymous",
                                                             str(tls.ca))),
                sdk=sdk_client(registry.endpoint, tls),
                sdk_counted=sdk_client(proxy.endpoint, tls))
            try:
                images = prepare_images(stack, root / "layouts")
                warm_up(stack, images[0])
                results = {image.size: measure(stack, image) for image in images}
            finally:
                for client in (stack.ours, stack.ours_counted, stack.sdk, stack.sdk_counted):
                    client.close()
    print(report(images, results))


if __name__ == "__main__":
    main()
