"""A valid base policy document and edits of it with known line numbers."""

from __future__ import annotations

import pytest

from shared.policy import PolicyError, parse_policy

# One service with one environment (QA) in an ACR the tests never reach.
ONE_QA_SERVICE = """\
version: 1
registries:
  acr: {url: myacr.azurecr.io, auth: anonymous}
services:
  delivery:
    registry: acr
    repository: delivery
    environments:
      - name: qa
        target:
          cluster: {name: qa, kubeconfigSecret: kubeconfig}
          namespace: delivery
          deployment: delivery
          container: app
"""

# Line numbers matter: the error tests name them.
BASE = """\
registries:
  main:
    url: myacr.azurecr.io
  prod:
    url: prodacr.azurecr.io
services:
  delivery:
    registry: main
    repository: delivery
    tags:
      semver: ">=1.0.0"
    environments:
      - name: qa
        target:
          cluster: {name: qa-aks, kubeconfigSecret: qa-kubeconfig}
          namespace: delivery
          deployment: delivery
          container: app
      - name: prod
        gate:
          approvers: {groups: [release-managers]}
          deadline: 72h
        promotion: {namespace: prod/}
        target:
          cluster: {name: prod-aks, kubeconfigSecret: prod-kubeconfig}
          namespace: delivery
          deployment: delivery
          container: web
"""


def edit(old: str, new: str, text: str = BASE) -> str:
    """`text` with the single occurrence of `old` replaced by `new`."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def problems(text: str) -> list[str]:
    """The problems parse_policy reports for `text`, one string each."""
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, "release-policy.yaml")
    return [str(problem) for problem in raised.value.problems]
