"""`python -m sandbox push SERVICE VERSION`: push a new version into the running local stack.

For a service released as a chart (delivery), first pushes the chart at the image's version
(the sample chart, with Helm's own package + push, as CI would; a version the registry has
already stays as it is); then (for every service: web has no chart) builds
a small generated image (sandbox/images.py; the same service and version always give the
same digest) that carries the OCI source, revision and version as labels and annotations,
and pushes it with skopeo into the stack's registry, whose notification starts the release
in the app; then waits until the app shows that release and prints its address.
`--crash-in ENV` first tells the stack that this image crashes in that environment (see
stack_control.py), so its rollout there fails with CrashLoopBackOff and the release rolls
back; the crashing build is a different image (a different digest) from the healthy build
of the same version. `--errors SHARE` and `--latency-ms MS` build an image whose stand-in
services (sandbox/kube/standins.py) answer that share of requests with 500, each after that
delay, in every environment (again a digest of its own). Exit codes: 0 pushed and started,
1 pushed but no release showed up, 2 nothing pushed (bad arguments, no stack, push failed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sandbox.chart_push import ChartPushFailed
from sandbox.images import SkopeoError, build_image, push
from sandbox.kube.controller import check_traffic
from sandbox.sample_chart import PublishedChart, chart_version, publish_chart
from sandbox.stack import REPO, StackError, StackFacts, find_stack, http_status
from sandbox.tls import TlsFiles
from sandbox.tools import ToolMissingError
from shared.ingest.decisions import release_id

TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
LAYER_BYTES = 64 * 1024
RELEASE_WAIT_SECONDS = 30.0


class PushError(RuntimeError):
    """Nothing was pushed: the message says why."""


@dataclass(frozen=True)
class Pushed:
    """One pushed version and the release it starts."""

    service: str
    version: str
    digest: str
    release_id: str
    release_url: str
    crash_in: str | None
    chart: PublishedChart | None = None  # None: the tag names no chart version
    errors: float = 0.0
    latency_ms: float = 0.0

    def behaviour(self) -> str:
        """How this build behaves, for the `pushed` line ("" when it runs fine)."""
        parts = [f"crashes in {self.crash_in}"] if self.crash_in else []
        if self.errors:
            parts.append(f"errors {self.errors:g}")
        if self.latency_ms:
            parts.append(f"latency {self.latency_ms:g} ms")
        return f" ({', '.join(parts)})" if parts else ""


def push_version(facts: StackFacts, service: str, version: str, crash_in: str | None = None,
                 errors: float = 0.0, latency_ms: float = 0.0) -> Pushed:
    """Build and push `service:version` into the stack's registry (crashing in `crash_in`,
    its stand-ins answering an `errors` share with 500 after `latency_ms`)."""
    known = facts.services.get(service)
    if known is None:
        raise PushError(f"unknown service {service!r}: this stack releases "
                        f"{', '.join(sorted(facts.services))}")
    if not TAG.fullmatch(version):
        raise PushError(f"version {version!r} is not a valid image tag (letters, digits, "
                        "'.', '_', '-'; at most 128)")
    if crash_in is not None and crash_in not in known["environments"]:
        raise PushError(f"--crash-in {crash_in!r}: {service} runs in "
                        f"{', '.join(known['environments'])}")
    try:
        check_traffic(errors, latency_ms)
    except ValueError as error:
        raise PushError(str(error).replace("errors", "--errors", 1)
                        .replace("latency_ms", "--latency-ms", 1)) from None
    variant = f"{version}-crash-in-{crash_in}" if crash_in else version
    if errors or latency_ms:
        variant += f"-errors-{errors:g}-latency-{latency_ms:g}"
    provenance = source_labels(service, version)
    layout = build_image(Path(facts.data_dir) / "images" / f"{service}-{variant}",
                         layer_sizes=[LAYER_BYTES], seed=f"{service}:{variant}", tag=version,
                         labels=provenance, annotations=provenance)
    ca = Path(facts.ca_file)
    chart = None
    version_of_chart = chart_version(version) if known.get("chartRepository") else None
    if version_of_chart is not None:  # before the image, as CI pushes it
        try:
            chart = publish_chart(facts.registry_host, ca, version_of_chart)
        except ChartPushFailed as error:
            raise PushError(f"the chart could not be pushed: {error}") from None
    if errors or latency_ms:  # the build behaves so wherever it runs
        for environment in known["environments"]:
            _set_rule(facts, service, layout.digest, environment,
                      "crash" if environment == crash_in else "ok", errors, latency_ms)
    elif crash_in:
        _set_rule(facts, service, layout.digest, crash_in, "crash")
    try:
        digest = push(layout, facts.registry_host, known["repository"], version,
                      tls=TlsFiles(cert=ca, key=ca, ca=ca))
    except (SkopeoError, ToolMissingError) as error:
        raise PushError(str(error)) from None
    release = release_id(service, digest)
    return Pushed(service, version, digest, release, facts.release_url(release), crash_in,
                  chart, errors, latency_ms)


def source_labels(service: str, version: str) -> dict[str, str]:
    """The OCI source, revision and version CI would set: a fake git commit id derived from
    the version (the same version, the same revision), in a made-up GitHub repository."""
    return {"org.opencontainers.image.source": f"https://github.com/contoso/{service}",
            "org.opencontainers.image.revision": hashlib.sha1(
                f"{service}:{version}".encode(), usedforsecurity=False).hexdigest(),
            "org.opencontainers.image.version": version}


def wait_for_release(pushed: Pushed, seconds: float = RELEASE_WAIT_SECONDS) -> bool:
    """Whether the app shows the release within `seconds` (the registry notifies it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if http_status(pushed.release_url) == 200:
            return True
        time.sleep(0.2)
    return False


def _set_rule(facts: StackFacts, service: str, digest: str, environment: str, behaviour: str,
              errors: float = 0.0, latency_ms: float = 0.0) -> None:
    token = Path(facts.control_token_file).read_text().strip()
    rule: dict[str, object] = {"service": service, "digest": digest,
                               "environment": environment, "behaviour": behaviour}
    if errors or latency_ms:
        rule.update(errors=errors, latency_ms=latency_ms)
    body = json.dumps(rule).encode()
    request = urllib.request.Request(
        f"{facts.control_url}/image-behaviours", data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10):
            return
    except urllib.error.HTTPError as error:
        reason = error.read().decode(errors="replace")
        raise PushError(f"the stack refused the {behaviour} rule ({error.code}): {reason}"
                        ) from None
    except OSError as error:
        raise PushError(f"the stack's control endpoint {facts.control_url} does not answer: "
                        f"{error}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox push", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("service", help="a service of the stack's policy (delivery, web)")
    parser.add_argument("version", help="the image tag, e.g. 1.0.1")
    parser.add_argument("--crash-in", metavar="ENV",
                        help="make this version crash in that environment (qa or prod)")
    parser.add_argument("--errors", metavar="SHARE", default="0",
                        help="share of requests its stand-ins answer with 500 (0 to 1)")
    parser.add_argument("--latency-ms", metavar="MS", default="0",
                        help="delay its stand-ins add to each request (milliseconds)")
    parser.add_argument("--data-dir", type=Path, default=REPO / ".devhost",
                        help="the data directory of the running stack (default: .devhost)")
    args = parser.parse_args(argv)
    try:
        errors, latency_ms = _number("--errors", args.errors), _number("--latency-ms",
                                                                       args.latency_ms)
        facts = find_stack(args.data_dir)
        pushed = push_version(facts, args.service, args.version, args.crash_in, errors,
                              latency_ms)
    except (StackError, PushError) as error:
        print(f"push: {error}", file=sys.stderr)
        return 2
    if pushed.chart is not None:
        print(pushed.chart.line())
    print(f"pushed {pushed.service}:{pushed.version}{pushed.behaviour()} as {pushed.digest}")
    if not wait_for_release(pushed):
        print(f"push: no release {pushed.release_id} showed up within "
              f"{RELEASE_WAIT_SECONDS:.0f} s: see {facts.devhost_log} and "
              f"{facts.app_url}/api/releases", file=sys.stderr)
        return 1
    print(f"release {pushed.release_id}: {pushed.release_url}")
    print(f"dashboard: {facts.dashboard_url}")
    return 0


def _number(flag: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise PushError(f"{flag} {text!r} is not a number") from None
