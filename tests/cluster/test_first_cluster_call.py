"""The first release after a worker starts reaches the cluster as fast as any later one.

The `kubernetes` package imports its API classes (and the hundreds of models they name) on
first use, about half a second here. The worker imports the app when it indexes the
functions, before any event: that is where this cost belongs, not in the first push's deploy.
Checked in a fresh interpreter, because this test process has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.pytest_fixtures import ADMIN_TOKEN
from sandbox.kube.server import KubeSimulator

REPO = Path(__file__).resolve().parents[2]
IMAGE = "acr.io/delivery@sha256:" + "1" * 64
FIRST_CALL = """
import json, sys
import function_app  # what the Python worker imports when it indexes the functions
from shared.cluster.requests import ClusterRequest
from shared.cluster.targets import KINDS

request = ClusterRequest.from_dict(json.loads(sys.argv[1]))
loaded = set(sys.modules)
snapshot = KINDS.open(request).snapshot().to_dict()  # as the snapshot_deployment activity asks
print(json.dumps({"image": snapshot["image"],
                  "imported": sorted(set(sys.modules) - loaded)}))
"""


def test_the_first_cluster_call_after_the_app_loaded_imports_nothing(kube: KubeSimulator) -> None:
    kube.create_deployment("qa", "delivery", IMAGE)
    request = {"target": {"cluster": "qa-cluster", "namespace": "qa", "deployment": "delivery",
                          "container": "app"},
               "connection": {"name": "qa-cluster", "kubeconfigSecret": "kubeconfig"},
               "secrets": {"local": {"environment": "qa"}}}
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "SECRETS__QA__KUBECONFIG": kube.kubeconfig(ADMIN_TOKEN)}
    done = subprocess.run([sys.executable, "-c", FIRST_CALL, json.dumps(request)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    first = json.loads(done.stdout.strip().splitlines()[-1])
    assert first["image"] == IMAGE  # the call reached the cluster and read the Deployment
    assert [m for m in first["imported"] if m.startswith("kubernetes")] == []
