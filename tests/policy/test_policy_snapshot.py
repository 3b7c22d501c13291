"""The service snapshot: complete, plain JSON, defaults applied, accepted by its consumers."""

from __future__ import annotations

import json
from typing import Any

from policy_samples import BASE, edit

from shared.cluster.connection import AksServer
from shared.cluster.deployments import DeploymentTarget
from shared.cluster.verification import HttpCheck
from shared.policy import parse_policy
from shared.registry.acr_import import AcrImportTarget
from shared.registry.client import RegistryEndpoint
from shared.registry.requests import PromotionRequest
from shared.secrets.sources import parse_spec

DIGEST = "sha256:" + "b" * 64
CA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
CLIENT_ID = "11111111-2222-3333-4444-555555555555"

DEFAULTS = """\
defaults:
  tags: {allowLatest: false, includePrerelease: true}
  supersede: {waitingAtGate: false}
  gate:
    approvers: {users: [alice@example.com, bob@example.com]}
    requiredApprovals: 2
    deadline: 2d
    reminderInterval: 12h
    escalation: {group: leads, afterReminders: 2}
    teamsWebhookSecret: teams-hook
  rolloutTimeout: 20m
  rollback: {onFailure: environmentAndEarlier, pauseForHuman: true, pauseDeadline: 4h}
"""

RICH = DEFAULTS + edit("""\
      - name: prod
        gate:
          approvers: {groups: [release-managers]}
          deadline: 72h
        promotion: {namespace: prod/}
        target:
          cluster: {name: prod-aks, kubeconfigSecret: prod-kubeconfig}
""", f"""\
      - name: staging
        promotion: {{namespace: staging/}}
        target:
          cluster: {{name: qa-aks, kubeconfigSecret: qa-kubeconfig}}
          namespace: staging
          deployment: delivery
          container: app
        secrets:
          keyVault:
            url: "https://Staging-KV.vault.azure.net/"
            managedIdentityClientId: {CLIENT_ID}
        rolloutTimeout: 90s
      - name: prod
        gate:
          escalation: null
        promotion:
          registry: prod
          namespace: prod/
          acrImport: {{subscriptionId: sub, resourceGroup: rg, registryName: prodacr}}
        checks:
          - url: https://delivery.example.com/healthz
          - name: version
            url: https://delivery.example.com/version
            expectStatus: 203
            bodyContains: ok
            jsonField: build.version
            jsonEquals: 1.4.2
            headers: {{Authorization: probe-token}}
            attemptTimeoutSeconds: 2
            intervalSeconds: 1
            withinSeconds: 30
        rollback: {{onFailure: none}}
        target:
          cluster:
            name: prod-aks
            aks: {{server: "https://prod-aks.hcp.westeurope.azmk8s.io:443", caData: {CA}}}
""")


def snapshot(text: str = RICH) -> dict[str, Any]:
    return parse_policy(text, "policy.yaml").service("delivery").snapshot()


def test_snapshot_is_plain_json() -> None:
    data = snapshot()
    assert json.loads(json.dumps(data)) == data


def test_snapshot_is_a_copy() -> None:
    service = parse_policy(RICH).service("delivery")
    first = service.snapshot()
    first["environments"][0]["checks"].append({"name": "x"})
    first["registry"]["url"] = "https://elsewhere"
    first["environments"][2]["target"]["cluster"]["aks"]["server"] = "https://other"
    assert service.snapshot() != first


def test_snapshot_names_its_policy() -> None:
    data = snapshot()
    assert data["snapshotVersion"] == 1
    assert data["policy"]["source"] == "policy.yaml"
    assert len(data["policy"]["sha256"]) == 64
    assert data["service"] == "delivery"
    assert data["repository"] == "delivery"
    assert data["registryName"] == "main"


def test_built_in_defaults_fill_what_the_file_leaves_out() -> None:
    data = snapshot(BASE)
    assert data["tags"] == {"pattern": None, "semver": ">=1.0.0", "allowLatest": False,
                            "includePrerelease": False}
    assert data["supersede"] == {"waitingAtGate": True, "ignoreOlderThanProduction": True}
    qa, prod = data["environments"]
    assert qa["secrets"] == {"local": {"environment": "qa"}}
    assert qa["rolloutTimeoutSeconds"] == 600
    assert qa["rollback"] == {"onFailure": "environment", "pauseForHuman": False,
                              "pauseDeadlineSeconds": 86400}
    assert qa["checks"] == [] and qa["gate"] is None and qa["promotion"] is None
    assert prod["gate"] == {"approvers": {"users": [], "groups": ["release-managers"]},
                            "requiredApprovals": 1, "deadlineSeconds": 259200,
                            "reminderIntervalSeconds": 86400, "escalation": None,
                            "teamsWebhookSecret": None}


def test_defaults_section_is_applied_field_by_field() -> None:
    data = snapshot()
    assert data["tags"] == {"pattern": None, "semver": ">=1.0.0", "allowLatest": False,
                            "includePrerelease": True}
    assert data["supersede"] == {"waitingAtGate": False, "ignoreOlderThanProduction": True}
    qa, staging, prod = data["environments"]
    assert qa["rolloutTimeoutSeconds"] == 1200
    assert staging["rolloutTimeoutSeconds"] == 90
    assert qa["rollback"] == {"onFailure": "environmentAndEarlier", "pauseForHuman": True,
                              "pauseDeadlineSeconds": 14400}
    assert prod["rollback"] == {"onFailure": "none", "pauseForHuman": True,
                                "pauseDeadlineSeconds": 14400}
    assert prod["gate"] == {
        "approvers": {"users": ["alice@example.com", "bob@example.com"], "groups": []},
        "requiredApprovals": 2, "deadlineSeconds": 172800, "reminderIntervalSeconds": 43200,
        "escalation": None,  # `escalation: null` switches the default off
        "teamsWebhookSecret": "teams-hook"}


def test_null_switches_reminders_off() -> None:
    text = edit("deadline: 72h", "deadline: 72h\n          reminderInterval: null")
    gate = snapshot(text)["environments"][1]["gate"]
    assert gate["reminderIntervalSeconds"] is None and gate["deadlineSeconds"] == 259200


def test_environments_keep_their_order_and_targets() -> None:
    qa, staging, prod = snapshot()["environments"]
    assert [qa["name"], staging["name"], prod["name"]] == ["qa", "staging", "prod"]
    assert qa["target"] == {
        "cluster": {"name": "qa-aks", "kubeconfigSecret": "qa-kubeconfig", "aks": None},
        "deploy": {"cluster": "qa-aks", "namespace": "delivery", "deployment": "delivery",
                   "container": "app"}}
    assert prod["target"]["cluster"] == {
        "name": "prod-aks", "kubeconfigSecret": None,
        "aks": {"server": "https://prod-aks.hcp.westeurope.azmk8s.io:443", "caData": CA,
                "managedIdentityClientId": None}}


def test_promotions_chain_from_where_the_previous_environment_deployed() -> None:
    data = snapshot()
    qa, staging, prod = data["environments"]
    main = {"url": "https://myacr.azurecr.io", "auth": "azure", "caBundle": None,
            "managedIdentityClientId": None}
    prod_registry = {**main, "url": "https://prodacr.azurecr.io"}
    assert qa["image"] == {"registry": main, "repository": "delivery"}
    assert staging["promotion"] == {
        "namespace": "staging/", "sourceRegistry": main, "sourceRepository": "delivery",
        "targetRegistry": None, "targetRepository": "staging/delivery", "acrImport": None}
    assert staging["image"] == {"registry": main, "repository": "staging/delivery"}
    assert prod["promotion"] == {
        "namespace": "prod/", "sourceRegistry": main, "sourceRepository": "staging/delivery",
        "targetRegistry": prod_registry, "targetRepository": "prod/delivery",
        "acrImport": {"subscriptionId": "sub", "resourceGroup": "rg",
                      "registryName": "prodacr"}}
    assert prod["image"] == {"registry": prod_registry, "repository": "prod/delivery"}


def test_consumers_accept_the_snapshot_dicts() -> None:
    data = snapshot()
    assert RegistryEndpoint.from_dict(data["registry"]).to_dict() == data["registry"]
    for environment in data["environments"]:
        deploy = environment["target"]["deploy"]
        assert DeploymentTarget.from_dict(deploy).to_dict() == deploy
        assert parse_spec(environment["secrets"]).to_dict() == environment["secrets"]
        for check in environment["checks"]:
            parsed = HttpCheck.from_dict(check)
            assert (parsed.name, parsed.url, parsed.expect_status, parsed.body_contains,
                    parsed.json_field, parsed.json_equals, parsed.headers,
                    parsed.attempt_timeout, parsed.interval, parsed.within) == tuple(
                check.values())
    aks = data["environments"][2]["target"]["cluster"]["aks"]
    assert AksServer.from_dict(aks) == AksServer(aks["server"], CA)
    promotion = data["environments"][2]["promotion"]
    assert AcrImportTarget.from_dict(promotion["acrImport"]).registry_name == "prodacr"
    request = PromotionRequest.from_dict({
        "registry": promotion["sourceRegistry"],
        "source": f"{promotion['sourceRepository']}@{DIGEST}",
        "target": f"{promotion['targetRepository']}:1.4.2",
        "targetRegistry": promotion["targetRegistry"], "acrImport": promotion["acrImport"]})
    assert str(request.target) == "prod/delivery:1.4.2"


def test_check_defaults_agree_with_http_check() -> None:
    check = snapshot()["environments"][2]["checks"][0]
    parsed = HttpCheck.from_dict({"url": check["url"]})
    assert check == {"name": parsed.name, "url": parsed.url,
                     "expectStatus": parsed.expect_status, "bodyContains": None,
                     "jsonField": None, "jsonEquals": None, "headers": {},
                     "attemptTimeoutSeconds": parsed.attempt_timeout,
                     "intervalSeconds": parsed.interval, "withinSeconds": parsed.within}


def test_key_vault_secrets_are_normalised_like_the_secrets_module() -> None:
    staging = snapshot()["environments"][1]
    assert staging["secrets"] == {"keyVault": {"url": "https://staging-kv.vault.azure.net",
                                               "managedIdentityClientId": CLIENT_ID}}
