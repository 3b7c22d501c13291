"""A protocol-level Kubernetes API simulator for tests of the release tool's rollout code.

`KubeSimulator` serves Deployments, ReplicaSets, Pods, Secrets, ConfigMaps, Services and
ServiceAccounts over HTTP(S) with bearer-token auth, watches, server-side apply and simulated
rollouts, enough for Helm v4's SDK, and (opt-in) real stand-in HTTP services behind ready pods
and Services; see README.md in this folder.
"""

from sandbox.kube.controller import BEHAVIOURS, Behaviour
from sandbox.kube.objects import ApiError
from sandbox.kube.server import HelmRelease, KubeSimulator
from sandbox.kube.standins import Standin, StandinError

__all__ = ["BEHAVIOURS", "ApiError", "Behaviour", "HelmRelease", "KubeSimulator", "Standin",
           "StandinError"]
