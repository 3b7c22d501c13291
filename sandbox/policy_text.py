"""The release policy YAML the test stacks run: `delivery` through QA, a gate, prod/, production.

`qa_then_prod` gives the text for one repository of a local registry: two environments on the
`sandbox` cluster (namespace and deployment named after them and the service), production's
gate and its promotion to `prod/`; callers choose the gate and add lines per environment.
Does not parse or check the text (parse_policy does), nor write the policy `make run` uses
(see stack_policy.py, which has defaults, local secrets and rollback).
"""

from __future__ import annotations

from pathlib import Path

SERVICE = "delivery"
APPROVER = "ann@example.com"
# Production's gate as a flow mapping: Ann approves within three days; the second one also
# reminds her daily.
GATE = f"{{approvers: {{users: [{APPROVER}]}}, deadline: 72h}}"
GATE_WITH_REMINDERS = (f"{{approvers: {{users: [{APPROVER}]}}, deadline: 72h,"
                       " reminderInterval: 24h}")


def qa_then_prod(registry_url: str, ca_file: Path | str, repository: str, *, gate: str = GATE,
                 rollout_timeout: str | None = None, qa_extra: str = "",
                 prod_extra: str = "") -> str:
    """The policy YAML; `gate` is production's gate as a flow mapping, the extras are whole
    lines (8-space indent) added to QA and, after the promotion, to production."""
    return f"""\
{_service(registry_url, ca_file, repository)}\
{_environment("qa", rollout_timeout)}{qa_extra}{_environment("prod", rollout_timeout)}\
        gate: {gate}
        promotion: {{namespace: prod/}}
{prod_extra}"""


def _service(registry_url: str, ca_file: Path | str, repository: str) -> str:
    """The policy up to the service's environments: the local registry and the service."""
    return f"""\
version: 1
registries:
  local: {{url: "{registry_url}", auth: anonymous, caBundle: "{ca_file}"}}
services:
  {SERVICE}:
    registry: local
    repository: {repository}
    tags: {{semver: ">=1.0.0"}}
    environments:
"""


def _environment(name: str, rollout_timeout: str | None) -> str:
    timeout = f"        rolloutTimeout: {rollout_timeout}\n" if rollout_timeout else ""
    return f"""\
      - name: {name}
        target:
          cluster: {{name: sandbox, kubeconfigSecret: kubeconfig}}
          namespace: {name}
          deployment: {SERVICE}
          container: app
{timeout}"""


def helm_qa_then_prod(registry_url: str, ca_file: Path | str, repository: str,
                      chart_repository: str, *, gate: str = GATE,
                      rollout_timeout: str | None = None, qa_test: bool = True,
                      prod_extra: str = "", values: str = "{replicaCount: 1}",
                      prod_helm: str = "") -> str:
    """The same release as `qa_then_prod`, each environment a Helm release of the chart
    `oci://<registry>/<chart_repository>` (production's from `prod/`, where its promotion
    copies the chart QA verified); QA runs `helm test` when `qa_test`; `prod_extra` lines
    (8-space indent) go to production; `values` (a flow mapping) are both charts' values,
    `prod_helm` more `key: value` pairs of production's `helm` mapping."""
    host = registry_url.split("://", 1)[-1]
    return f"""\
{_service(registry_url, ca_file, repository)}\
{_helm_environment("qa", f"oci://{host}/{chart_repository}", rollout_timeout, qa_test, values)}\
{_helm_environment("prod", f"oci://{host}/prod/{chart_repository}", rollout_timeout, False,
                   values, prod_helm)}\
        gate: {gate}
        promotion: {{namespace: prod/}}
{prod_extra}"""


def _helm_environment(name: str, chart: str, rollout_timeout: str | None, test: bool,
                      values: str, more: str = "") -> str:
    timeout = f"        rolloutTimeout: {rollout_timeout}\n" if rollout_timeout else ""
    return f"""\
      - name: {name}
        target:
          cluster: {{name: sandbox, kubeconfigSecret: kubeconfig}}
          namespace: {name}
          helm: {{chart: "{chart}", values: {values}, test: {str(test).lower()}\
{", " + more if more else ""}}}
{timeout}"""
