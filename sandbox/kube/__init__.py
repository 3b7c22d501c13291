"""A protocol-level Kubernetes API simulator for tests of the release tool's rollout code.

`KubeSimulator` serves Deployments, ReplicaSets and Pods over HTTP(S) with bearer-token auth and
simulated rollouts; see README.md in this folder.
"""

from sandbox.kube.controller import BEHAVIOURS, Behaviour
from sandbox.kube.objects import ApiError
from sandbox.kube.server import KubeSimulator

__all__ = ["BEHAVIOURS", "ApiError", "Behaviour", "KubeSimulator"]
