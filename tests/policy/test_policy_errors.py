"""Every kind of policy error names file, line and field."""

from __future__ import annotations

import pytest
from policy_samples import BASE, edit, problems

from shared.policy import PolicyError, Problem, parse_policy

F = "release-policy.yaml"
ENV0 = "services.delivery.environments[0]"
ENV1 = "services.delivery.environments[1]"
BILLING = """\
  billing:
    registry: main
    repository: delivery
    environments:
      - name: qa
        target:
          cluster: {name: qa-aks, kubeconfigSecret: qa-kubeconfig}
          namespace: billing
          deployment: billing
          container: app
"""


def test_base_document_is_valid() -> None:
    assert list(parse_policy(BASE).services) == ["delivery"]


CASES = [
    pytest.param(
        "          deadline: 72h", "\tdeadline: 72h",
        f"{F}:22: YAML syntax error: while scanning for the next token found character '\\t'"
        " that cannot start any token", id="yaml-syntax"),
    pytest.param(
        "    repository: delivery\n", "    repository: delivery\n    repository: other\n",
        f"{F}:10: services.delivery.repository: duplicate key (first at line 9)",
        id="duplicate-yaml-key"),
    pytest.param(
        "{namespace: prod/}", "{namespace: prod/, retag: true}",
        f"{F}:23: {ENV1}.promotion.retag: unknown field (expected one of: namespace, registry,"
        " acrImport)", id="unknown-field"),
    pytest.param(
        "    tags:", "    tag:",
        f"{F}:10: services.delivery.tag: unknown field (did you mean 'tags'? expected one of:"
        " registry, repository, tags, supersede, environments)", id="unknown-field-typo"),
    pytest.param(
        "repository: delivery", "repository: 42",
        f"{F}:9: services.delivery.repository: must be a string, not number 42",
        id="wrong-type"),
    pytest.param(
        "          approvers: {groups: [release-managers]}",
        "          approvers: {groups: release-managers}",
        f"{F}:21: {ENV1}.gate.approvers.groups: must be a list, not text 'release-managers'",
        id="wrong-type-list"),
    pytest.param(
        "deadline: 72h", "deadline: 72x",
        f"{F}:22: {ENV1}.gate.deadline: invalid duration '72x' (use 30m, 24h, 3d)",
        id="bad-duration"),
    pytest.param(
        "deadline: 72h", "deadline: 72",
        f"{F}:22: {ENV1}.gate.deadline: invalid duration 72: a number needs a unit (use 30m,"
        " 24h, 3d)", id="duration-without-unit"),
    pytest.param(
        "deadline: 72h", "deadline: 0m",
        f"{F}:22: {ENV1}.gate.deadline: duration '0m' must be positive", id="zero-duration"),
    pytest.param(
        'semver: ">=1.0.0"', 'pattern: "v[0-9"',
        f"{F}:11: services.delivery.tags.pattern: invalid regex 'v[0-9': unterminated character"
        " set at position 1", id="bad-regex"),
    pytest.param(
        'semver: ">=1.0.0"', 'semver: ">=1.0.0 <=banana"',
        f"{F}:11: services.delivery.tags.semver: invalid semver range: 'banana' is not a"
        " version in range '>=1.0.0 <=banana'", id="bad-semver-range"),
    pytest.param(
        "      - name: prod", "      - name: qa",
        f"{F}:19: {ENV1}.name: duplicate environment 'qa' (first at line 13)",
        id="duplicate-environment"),
    pytest.param(
        "      - name: qa\n", "      - name: qa\n        promotion: {namespace: staging/}\n",
        f"{F}:14: {ENV0}.promotion: the first environment cannot have a promotion: it deploys"
        " the image as pushed", id="promotion-on-first-environment"),
    pytest.param(
        "registry: main", "registry: mian",
        f"{F}:8: services.delivery.registry: unknown registry 'mian' (registries: main, prod)",
        id="unknown-registry"),
    pytest.param(
        "{namespace: prod/}", "{registry: prd}",
        f"{F}:23: {ENV1}.promotion.registry: unknown registry 'prd' (registries: main, prod)",
        id="unknown-promotion-registry"),
    pytest.param(
        "kubeconfigSecret: qa-kubeconfig", "kubeconfigSecret: qa_kubeconfig",
        f"{F}:15: {ENV0}.target.cluster.kubeconfigSecret: invalid secret name: 'qa_kubeconfig'"
        " contains '_'; Key Vault names may only use 0-9, a-z, A-Z and -",
        id="invalid-secret-name"),
    pytest.param(
        "          container: web\n", "          container: web\n" + BILLING,
        f"{F}:31: services.billing.repository: repository 'delivery' already belongs to"
        " service 'delivery' (line 9); a repository belongs to one service only",
        id="repository-claimed-twice"),
    pytest.param(
        "          container: app\n", "",
        f"{F}:14: {ENV0}.target.container: required field is missing", id="missing-field"),
    pytest.param(
        "repository: delivery", "repository: prod/delivery",
        f"{F}:23: {ENV1}.promotion.namespace: namespace 'prod/' contains the source repository"
        " 'prod/delivery'; promote into a namespace outside it",
        id="promotion-namespace-contains-source"),
    pytest.param(
        "{namespace: prod/}", "{registry: main}",
        f"{F}:23: {ENV1}.promotion: promotes delivery onto itself; give a namespace or another"
        " registry", id="promotion-onto-itself"),
    pytest.param(
        "{namespace: prod/}", "{namespace: prod/, acrImport: {subscriptionId: s,"
        " resourceGroup: g}}",
        f"{F}:23: {ENV1}.promotion.acrImport.registryName: required field is missing",
        id="missing-field-in-flow-mapping"),
    pytest.param(
        "    url: prodacr.azurecr.io", "    url: prodacr.azurecr.io\n    auth: basic",
        f"{F}:6: registries.prod.auth: must be 'azure' or 'anonymous', not text 'basic'",
        id="bad-literal"),
    pytest.param(
        "    url: myacr.azurecr.io", "    url: https://myacr.azurecr.io/v2/",
        f"{F}:3: registries.main.url: 'https://myacr.azurecr.io/v2/' must be a registry host,"
        " e.g. myacr.azurecr.io or https://127.0.0.1:5000", id="registry-url-with-path"),
    pytest.param(
        "          deadline: 72h", "          deadline: 72h\n          reminderInterval: 3d",
        f"{F}:20: {ENV1}.gate: reminderInterval 3d is not shorter than the deadline 3d: no"
        " reminder would be sent", id="reminder-after-deadline"),
    pytest.param(
        "          deadline: 72h", "          deadline: 72h\n"
        "          escalation: {group: leads, afterReminders: 3}",
        f"{F}:20: {ENV1}.gate: escalation after 3 reminder(s) never happens: only 2 fit before"
        " the deadline 3d (every 1d)", id="escalation-never-happens"),
    pytest.param(
        "          deadline: 72h", "          deadline: 72h\n          reminderInterval: null\n"
        "          escalation: {group: leads, afterReminders: 1}",
        f"{F}:20: {ENV1}.gate: escalation needs reminderInterval (it follows reminders)",
        id="escalation-without-reminders"),
    pytest.param(
        "          approvers: {groups: [release-managers]}",
        "          approvers: {users: [ann]}\n          requiredApprovals: 2",
        f"{F}:20: {ENV1}.gate: requiredApprovals is 2 but only 1 approver(s) are listed",
        id="more-approvals-than-approvers"),
    pytest.param(
        "          approvers: {groups: [release-managers]}\n", "",
        f"{F}:20: {ENV1}.gate: needs approvers (users or groups), here or in defaults.gate",
        id="gate-without-approvers"),
    pytest.param(
        'semver: ">=1.0.0"', 'semver: ">=1.0.0"\n      allowLatest: true',
        f"{F}:10: services.delivery.tags: allowLatest is true, but 'latest' is not a version,"
        " so semver range '>=1.0.0' rejects it; drop one of them", id="latest-with-range"),
    pytest.param(
        "{name: prod-aks, kubeconfigSecret: prod-kubeconfig}",
        "{name: qa-aks, kubeconfigSecret: prod-kubeconfig}",
        f"{F}:25: {ENV1}.target.cluster: cluster 'qa-aks' is defined differently at line 15:"
        " one cluster name, one connection", id="cluster-defined-twice"),
    pytest.param(
        "prod-aks, kubeconfigSecret: prod-kubeconfig}\n          namespace: delivery\n"
        "          deployment: delivery\n          container: web",
        "qa-aks, kubeconfigSecret: qa-kubeconfig}\n          namespace: delivery\n"
        "          deployment: delivery\n          container: app",
        f"{F}:24: {ENV1}.target: container 'app' of deployment delivery/delivery on qa-aks"
        " is already the target of services.delivery.environments[0] (line 14)",
        id="same-container-twice"),
    pytest.param(
        "deadline: 72h", "deadline: null",
        f"{F}:22: {ENV1}.gate.deadline: must not be null (leave the field out to use the"
        " default)", id="null-where-a-value-is-needed"),
    pytest.param(
        "          container: app\n", "          container: app\n        checks:\n"
        "          - {url: 'http://x/', jsonField: day, jsonEquals: 2024-01-01}\n",
        f"{F}:20: {ENV0}.checks[0].jsonEquals: must be a JSON value (quote dates and times),"
        " not date", id="not-a-json-value"),
    pytest.param(
        "          container: app\n", "          container: app\n        checks:\n"
        "          - {url: 'http://x/', jsonEquals: 1}\n",
        f"{F}:20: {ENV0}.checks[0]: jsonEquals needs jsonField (the dotted path it compares)",
        id="json-equals-without-field"),
    pytest.param(
        "{name: qa-aks, kubeconfigSecret: qa-kubeconfig}", "{name: qa-aks}",
        f"{F}:15: {ENV0}.target.cluster: needs exactly one of kubeconfigSecret or aks",
        id="cluster-without-connection"),
    pytest.param(
        "  delivery:\n", "  delivery service:\n",
        f"{F}:7: services.delivery service: key 'delivery service': invalid name 'delivery"
        " service': up to 63 letters and digits, groups joined by '-', '_' or '.'",
        id="invalid-service-name"),
    pytest.param(
        "      - name: qa\n", "      - name: QA env\n",
        f"{F}:13: {ENV0}.name: 'QA env' is not a valid environment name (letters and digits,"
        " groups joined by single hyphens, e.g. qa, prod, eu-prod)",
        id="invalid-environment-name"),
]


@pytest.mark.parametrize(("old", "new", "expected"), CASES)
def test_error_names_file_line_and_field(old: str, new: str, expected: str) -> None:
    assert problems(edit(old, new)) == [expected]


def test_repository_inside_another_services_promotion_namespace() -> None:
    text = edit("          container: web\n", "          container: web\n" + BILLING.replace(
        "repository: delivery", "repository: prod/billing"))
    assert problems(text) == [
        f"{F}:31: services.billing.repository: repository 'prod/billing' lies in namespace"
        " 'prod/' that service 'delivery' promotes into (line 23): its pushes would be taken"
        " for promotions and ignored"]


def test_a_missing_top_level_section_points_at_line_1() -> None:
    assert problems("registries: {main: {url: a.io}}\n") == [
        f"{F}:1: services: required field is missing"]


def test_an_empty_file_is_an_error() -> None:
    assert problems("# nothing yet\n") == [
        f"{F}:1: the policy is empty (expected registries and services)"]


def test_a_document_that_is_not_a_mapping() -> None:
    assert problems("- a\n- b\n") == [f"{F}:1: must be a mapping, not a list"]


def test_an_unclosed_quote_names_where_the_scanner_stopped() -> None:
    [problem] = problems(edit("deadline: 72h", 'deadline: "72h'))
    assert problem.startswith(f"{F}:29: YAML syntax error: while scanning a quoted scalar")


def test_every_problem_is_reported_in_file_order() -> None:
    text = edit("deadline: 72h", "deadline: 72x", edit("repository: delivery", "repository: 4"))
    assert problems(text) == [
        f"{F}:9: services.delivery.repository: must be a string, not number 4",
        f"{F}:22: {ENV1}.gate.deadline: invalid duration '72x' (use 30m, 24h, 3d)"]


def test_policy_error_carries_structured_problems_and_prints_one_per_line() -> None:
    text = edit("deadline: 72h", "deadline: 72x", edit("repository: delivery", "repository: 4"))
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, "p.yaml")
    error = raised.value
    assert isinstance(error, ValueError)
    assert error.problems[1] == Problem("p.yaml", 22, f"{ENV1}.gate.deadline",
                                        "invalid duration '72x' (use 30m, 24h, 3d)")
    assert str(error).splitlines() == [str(problem) for problem in error.problems]


def test_source_defaults_to_a_placeholder_name() -> None:
    with pytest.raises(PolicyError, match=r"^<policy>:9: "):
        parse_policy(edit("repository: delivery", "repository: 4"))


def test_anchors_and_merge_keys_work_and_keep_line_numbers() -> None:
    text = edit("          deadline: 72h\n", "          <<: *gate\n", edit(
        "services:\n", "gates: &gate {deadline: 2d}\nservices:\n"))
    assert problems(text) == [
        f"{F}:6: gates: unknown field (expected one of: version, defaults, registries,"
        " services)"]
    text = edit("          <<: *gate\n", "          <<: *gate\n          deadline: 1x\n", text)
    assert f"{F}:24: {ENV1}.gate.deadline: invalid duration '1x' (use 30m, 24h, 3d)" in \
        problems(text)
