"""Push a chart folder to the local registry as CI does: `helm package` then `helm push`.

Helm's own code (helm-python-sdk) does both, in a child process: Go's TLS trusts a private
CA only through `SSL_CERT_FILE` read before its first TLS use, which must not leak into the
test process. Run as `python -m sandbox.chart_push <folder> <oci://host/root> <ca> [version]`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 60.0


class ChartPushFailed(RuntimeError):
    """`helm package` or `helm push` failed; the message is Helm's."""


@dataclass(frozen=True)
class PushedChart:
    """What `helm push` reported: the chart's reference and its manifest digest."""

    reference: str
    digest: str


def push_chart(folder: Path, remote: str, ca: Path, version: str | None = None,
               app_version: str | None = None) -> PushedChart:
    """Package `folder` (at `version`, when given) and push it under `remote`
    (`oci://host/helm`); the chart lands at `remote/<chart name>:<version>`."""
    env = {**os.environ, "SSL_CERT_FILE": str(ca)}
    command = [sys.executable, "-m", "sandbox.chart_push", str(folder), remote, str(ca),
               version or "", app_version or ""]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT_S, cwd=Path(__file__).resolve().parent.parent,
                              check=False)
    except subprocess.TimeoutExpired:
        raise ChartPushFailed(f"helm package + push of {folder} to {remote} took longer than "
                              f"{TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        raise ChartPushFailed(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                              else f"chart push exited {done.returncode}")
    pushed = json.loads(done.stdout.strip().splitlines()[-1])
    return PushedChart(pushed["ref"], pushed["digest"])


def _main(folder: str, remote: str, version: str, app_version: str) -> None:
    import helm_python

    with tempfile.TemporaryDirectory(prefix="chart-push-") as work:
        archive = helm_python.package(folder, destination=work, version=version or None,
                                      app_version=app_version or None)
        chart = helm_python.Chart.load(archive)
        helm_python.push(archive, remote)
    reference = f"{remote}/{chart.name}:{chart.version}"
    with helm_python.RegistryClient() as client:
        digest = client.resolve(reference)["digest"]
    print(json.dumps({"ref": reference, "digest": digest}))


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2], sys.argv[4], sys.argv[5])
