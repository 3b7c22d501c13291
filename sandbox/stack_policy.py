"""The local stack's release policy and app settings, known only once its parts have started.

`local_policy` writes the YAML for the sample `delivery` service (QA, then a gate with a
one-hour deadline, promotion to `prod/` and production), each environment a Helm release of
the sample chart (`oci://<registry>/helm/delivery` at the image's version, QA with `helm
test` and an analysis of the new version's error rate through the stack's Prometheus;
production's from `prod/helm/delivery`, where promotion copies it), and for the sample `web`
service on plain Deployments (the stack makes them: see stack_web.py): a canary in QA and
blue-green in production, both under the same error-rate analysis, against the stack's
registry and cluster; `app_settings` gives devhost what the app reads: storage,
policy file, webhook token, approval settings, the reconciler's schedule and the local
secrets `SECRETS__<ENV>__<NAME>`. The throwaway keys are made once per data directory (mode
0600) and never printed. Does not start anything: see stack.py.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

SERVICE = "delivery"
WEB = "web"  # the second sample service: plain Deployments, canary in QA, blue-green in prod
SERVICES = (SERVICE, WEB)
ENVIRONMENTS = ("qa", "prod")
PROMOTION_NAMESPACE = "prod/"
APPROVERS = ("release-manager@example.com",)
GATE_DEADLINE = "1h"
GATE_REMINDER = "20m"
# Helm waits for readiness until this timeout before a failed upgrade may be rolled back: short,
# so a crash rolls back within about half a minute (a healthy rollout here takes seconds).
ROLLOUT_TIMEOUT = "30s"
CHART_ROOT = "helm"  # the chart lands at <registry>/helm/delivery:<version>
CHART_REPOSITORY = f"{CHART_ROOT}/{SERVICE}"
WEBHOOK_TOKEN_FILE = "webhook-token"
SIGNING_KEY_FILE = "approval-signing-key"
CONTROL_TOKEN_FILE = "control-token"
RECONCILE_SCHEDULE = "0 */5 * * * *"  # the reconciler every 5 minutes, as in the samples
ANALYSIS_INTERVAL = "5s"
ANALYSIS_MEASUREMENTS = 3
# One failed measurement is forgiven: Prometheus 2.42 scrapes a new pod's stand-in only 4 to
# 10 s after it is ready, so the first measurement may find no data yet.
ANALYSIS_FAILURE_LIMIT = 1
ERROR_RATE_MAX = 0.1
ERROR_RATE_METRIC = "error-rate"
WEB_REPLICAS = {"qa": 4, "prod": 2}  # the stack's `web` Deployments (stack_web.py)
WEB_CANARY_WEIGHTS = (25, 50)  # of 4 replicas: 1 canary pod + 3 stable, then 2 + 2
WEB_PREVIEW = f"{WEB}-preview"
# The previous slot stays this long after the switch: at least the post-switch analysis's
# length (measurements x interval), so that a failure can still switch back to it.
WEB_SCALE_DOWN_DELAY = "15s"
WEB_VERSIONS = ">=1.0.0"  # the stack's initial web image, 0.9.0, starts no release
# The Services each environment's traffic goes through: every one an analysis measures.
TRAFFIC = (("qa", SERVICE), ("prod", SERVICE), ("qa", WEB), ("prod", WEB), ("prod", WEB_PREVIEW))


def error_rate_query(namespace: str, window: str = "10s") -> str:
    """PromQL: the share of 500s among the requests the new version's pods answered over
    `window`. Its pods are the release's (`${canary}`) whose stand-in runs `${digest}`
    (`standin_info`; `max by (pod)`: after a restart a pod's old stand-in address lingers
    for Prometheus's 5 min lookback), so the old version's pods never dilute it; no traffic
    yet is NaN (a failed measurement), not zero."""
    def requests(code: str) -> str:
        return (f'sum(rate(http_requests_total{{namespace="{namespace}",'
                f'pod=~"${{canary}}-.*"{code}}}[{window}]) * on(pod) group_left() '
                f'max by (pod) (standin_info{{namespace="{namespace}",digest="${{digest}}"}}))')
    return requests(',code="500"') + " / " + requests("")


@dataclass(frozen=True)
class Wiring:
    """Where the app finds the stack's parts."""

    app_url: str
    registry_url: str
    ca_file: Path
    storage: str
    kubeconfigs: dict[str, str]  # environment -> kubeconfig YAML (holds a token: a secret)
    teams_url: str


def analysis(namespace: str, prometheus_url: str) -> str:
    """An environment's `analysis` (8-space indent): the new version's error rate in
    `namespace`, from the Prometheus at `prometheus_url`, every 5 s, at most 0.1."""
    return f"""\
        analysis:
          interval: {ANALYSIS_INTERVAL}
          measurements: {ANALYSIS_MEASUREMENTS}
          failureLimit: {ANALYSIS_FAILURE_LIMIT}
          metrics:
            - name: {ERROR_RATE_METRIC}
              prometheus:
                url: "{prometheus_url}"
                query: '{error_rate_query(namespace)}'
              threshold: {{max: {ERROR_RATE_MAX}}}
"""


def _gate() -> str:
    """Production's gate (8-space indent), the same for every sample service."""
    return f"""\
        gate:
          approvers: {{users: [{", ".join(APPROVERS)}]}}
          requiredApprovals: 1
          deadline: {GATE_DEADLINE}
          reminderInterval: {GATE_REMINDER}
          teamsWebhookSecret: teams-webhook-url
"""


def _web_target(namespace: str) -> str:
    """web's Deployment target and secrets in `namespace` (8-space indent)."""
    return f"""\
        target:
          cluster: {{name: sandbox, kubeconfigSecret: kubeconfig}}
          namespace: {namespace}
          deployment: {WEB}
          container: app
        secrets: {{local: {{environment: {namespace}}}}}
"""


def _web(prometheus_url: str) -> str:
    """The `web` service: plain Deployments, a canary in QA, blue-green in production (its
    analysis before and after the switch), each measured by the error rate."""
    return f"""\
  {WEB}:
    repository: {WEB}
    tags: {{pattern: 'v?\\d+\\.\\d+\\.\\d+', semver: "{WEB_VERSIONS}"}}
    environments:
      - name: qa
{_web_target("qa")}{analysis("qa", prometheus_url)}\
        strategy:
          canary: {{replicas: {WEB_REPLICAS["qa"]}, weights: {list(WEB_CANARY_WEIGHTS)}}}
      - name: prod
{_gate()}\
        promotion: {{namespace: {PROMOTION_NAMESPACE}}}
{_web_target("prod")}        rollback: {{onFailure: environment}}
{analysis("prod", prometheus_url)}\
        strategy:
          blueGreen:
            previewService: {WEB_PREVIEW}
            activeService: {WEB}
            scaleDownDelay: {WEB_SCALE_DOWN_DELAY}
            prePromotionAnalysis: true
            postPromotionAnalysis: true
"""


def local_policy(registry_url: str, ca_file: Path, prometheus_url: str) -> str:
    """The policy YAML: `delivery` goes to QA, waits for approval, is promoted, goes to prod;
    each environment is a Helm release of the chart whose version is the image's; QA's
    error rate, measured by the Prometheus at `prometheus_url`, decides its rollback. `web`
    takes the same path on plain Deployments, as a canary in QA and blue-green in prod."""
    host = registry_url.split("://", 1)[-1]
    return f"""\
# Written by `make run` for this stack (registry and CA are known only at start).
version: 1
defaults:
  registry: local
  tags: {{allowLatest: false, semver: ">=0.1.0"}}
  supersede: {{waitingAtGate: true, ignoreOlderThanProduction: true}}
  rolloutTimeout: {ROLLOUT_TIMEOUT}
registries:
  local: {{url: "{registry_url}", auth: anonymous, caBundle: "{ca_file}"}}
services:
  {SERVICE}:
    repository: {SERVICE}
    tags: {{pattern: 'v?\\d+\\.\\d+\\.\\d+'}}
    environments:
      - name: qa
        target:
          cluster: {{name: sandbox, kubeconfigSecret: kubeconfig}}
          namespace: qa
          helm: {{chart: "oci://{host}/{CHART_REPOSITORY}", version: image, test: true}}
        secrets: {{local: {{environment: qa}}}}
{analysis("qa", prometheus_url)}\
      - name: prod
{_gate()}\
        promotion: {{namespace: {PROMOTION_NAMESPACE}}}
        target:
          cluster: {{name: sandbox, kubeconfigSecret: kubeconfig}}
          namespace: prod
          helm: {{chart: "oci://{host}/{PROMOTION_NAMESPACE}{CHART_REPOSITORY}", version: image}}
        secrets: {{local: {{environment: prod}}}}
        rollback: {{onFailure: environment}}
{_web(prometheus_url)}"""


def image_pattern(registry_host: str, environment: str, digest: str,
                  service: str = SERVICE) -> str:
    """The image reference (without scheme) that `environment` runs for this digest of
    `service` (its repository is named after it)."""
    namespace = PROMOTION_NAMESPACE if environment == "prod" else ""
    return f"{registry_host}/{namespace}{service}@{digest}"


def app_settings(data_dir: Path, policy_file: Path, wiring: Wiring) -> dict[str, str]:
    """Every app setting devhost needs for this stack (values include secrets: never print)."""
    settings = {
        "AzureWebJobsStorage": wiring.storage,
        "RELEASE_POLICY_FILE": str(policy_file),
        "REGISTRY_WEBHOOK_TOKEN": stored_secret(data_dir / WEBHOOK_TOKEN_FILE, 24),
        "APPROVAL_SIGNING_KEY": stored_secret(data_dir / SIGNING_KEY_FILE, 48),
        "APPROVAL_BASE_URL": wiring.app_url,
        "APPROVAL_IDENTITY": "token",
        "RECONCILE_SCHEDULE": RECONCILE_SCHEDULE,
    }
    for environment in ENVIRONMENTS:
        prefix = f"SECRETS__{environment.upper()}__"
        settings[prefix + "KUBECONFIG"] = wiring.kubeconfigs[environment]
        settings[prefix + "TEAMS_WEBHOOK_URL"] = wiring.teams_url
    return settings


def stored_secret(path: Path, size: int) -> str:
    """A random URL-safe value kept in `path` (0600), made on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(size))
    return path.read_text().strip()
