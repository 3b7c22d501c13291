"""The `helm` target kind: its snapshot form, its defaults, and every bad input's error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from helm_samples import HELM, app_folder, line
from policy_samples import BASE, edit, problems

from shared.cluster.requests import ClusterRequest
from shared.policy import Environment, PolicyError, parse_policy
from shared.policy.helm import HelmTarget, HelmTest, ImageValues, ValuesFile, chart_version_for_tag

ROOT = Path(__file__).resolve().parents[2]
F = "release-policy.yaml"
DIGEST = "sha256:" + "4f" * 32
QA = "services.delivery.environments[0].target"
PROD = "services.delivery.environments[1].target"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return app_folder(tmp_path / "app")


def test_a_helm_target_snapshot_carries_every_field_and_the_values_files(app: Path) -> None:
    service = parse_policy(HELM, F, app).service("delivery")
    qa, prod = service.snapshot()["environments"]
    assert service.registry["url"] == "https://myacr.azurecr.io"  # the charts' host
    assert qa["target"] == {
        "cluster": {"name": "qa-aks", "kubeconfigSecret": "qa-kubeconfig", "aks": None},
        "deploy": {
            "kind": "helm", "cluster": "qa-aks", "namespace": "delivery",
            "release": "delivery-qa", "chart": "oci://myacr.azurecr.io/helm/delivery",
            "version": "image",
            "values": {"replicaCount": 3, "image": {"pullPolicy": "IfNotPresent"}},
            "valuesFiles": [
                {"path": "deploy/values.yaml",
                 "values": {"replicaCount": 2, "resources": {"limits": {"memory": "128Mi"}}}},
                {"path": "deploy/values-qa.yaml",
                 "values": {"ingress": {"host": "delivery.qa.example.com"}}}],
            "imageValues": {"repository": "image.repository", "digest": "image.digest"},
            "secretValues": {"database.password": "db-password"},
            "maxHistory": 5, "test": {"enabled": True, "timeoutSeconds": 120},
            "waitForChartSeconds": 900, "chartRegistry": service.registry}}
    assert prod["target"]["deploy"] == {
        "kind": "helm", "cluster": "prod-aks", "namespace": "delivery", "release": "delivery",
        "chart": "oci://myacr.azurecr.io/prod/helm/delivery", "version": "image",
        "values": {}, "valuesFiles": [],
        "imageValues": {"repository": "app.image.name", "digest": "app.image.digest"},
        "secretValues": {}, "maxHistory": 10, "test": {"enabled": True, "timeoutSeconds": 300},
        "waitForChartSeconds": 600, "chartRegistry": service.registry}


def test_the_snapshot_reads_back_typed_and_writes_back_unchanged(app: Path) -> None:
    snapshot = json.loads(json.dumps(parse_policy(HELM, F, app).service("delivery").snapshot()))
    for data in snapshot["environments"]:
        environment = Environment.from_dict(data)
        assert environment.to_dict() == data
        assert environment.helm is not None
        assert environment.helm.to_dict() == data["target"]["deploy"]
        assert HelmTarget.from_dict(data["target"]["deploy"]).to_dict() == \
            data["target"]["deploy"]
    qa = Environment.from_dict(snapshot["environments"][0]).helm
    assert qa == HelmTarget(
        cluster="qa-aks", namespace="delivery", release="delivery-qa",
        chart="oci://myacr.azurecr.io/helm/delivery", version="image",
        values={"replicaCount": 3, "image": {"pullPolicy": "IfNotPresent"}},
        values_files=(ValuesFile("deploy/values.yaml",
                                 {"replicaCount": 2, "resources": {"limits": {"memory": "128Mi"}}}),
                      ValuesFile("deploy/values-qa.yaml",
                                 {"ingress": {"host": "delivery.qa.example.com"}})),
        image_values=ImageValues(), secret_values={"database.password": "db-password"},
        max_history=5, test=HelmTest(True, timedelta(minutes=2)),
        wait_for_chart=timedelta(minutes=15),
        chart_registry=snapshot["environments"][0]["target"]["deploy"]["chartRegistry"])
    assert qa.chart_registry is not None and qa.chart_registry["url"] == "https://myacr.azurecr.io"


def test_writing_the_snapshot_copies_nested_values_out() -> None:
    environment = parse_policy(HELM.replace("valuesFiles: [deploy/values.yaml,"
                                            " deploy/values-qa.yaml]", "valuesFiles: []"),
                               F).service("delivery").environments[0]
    written = environment.to_dict()
    written["target"]["deploy"]["values"]["image"]["pullPolicy"] = "Always"
    assert environment.to_dict()["target"]["deploy"]["values"]["image"] == {
        "pullPolicy": "IfNotPresent"}


def test_a_minimal_helm_target_takes_the_defaults() -> None:
    text = edit("          deployment: delivery\n          container: app\n",
                "          helm: {chart: charts/delivery}\n")
    deploy = parse_policy(text, F).service("delivery").snapshot()["environments"][0][
        "target"]["deploy"]
    assert deploy == {
        "kind": "helm", "cluster": "qa-aks", "namespace": "delivery", "release": "delivery",
        "chart": "charts/delivery", "version": "image", "values": {}, "valuesFiles": [],
        "imageValues": {"repository": "image.repository", "digest": "image.digest"},
        "secretValues": {}, "maxHistory": 10, "test": {"enabled": False, "timeoutSeconds": None},
        "waitForChartSeconds": 600, "chartRegistry": None}
    assert HelmTarget.from_dict(deploy) == HelmTarget("qa-aks", "delivery", "delivery",
                                                      "charts/delivery")


def test_deployment_targets_keep_their_snapshot_and_have_no_helm_part() -> None:
    environment = parse_policy(BASE, F).service("delivery").environments[0]
    assert environment.helm is None
    assert environment.to_dict()["target"]["deploy"] == {
        "cluster": "qa-aks", "namespace": "delivery", "deployment": "delivery",
        "container": "app"}


def test_without_an_app_root_values_files_are_named_but_not_read() -> None:
    deploy = parse_policy(HELM, F).service("delivery").snapshot()["environments"][0][
        "target"]["deploy"]
    assert deploy["valuesFiles"] == [{"path": "deploy/values.yaml", "values": None},
                                     {"path": "deploy/values-qa.yaml", "values": None}]


def test_a_deploy_activity_request_carries_the_helm_target_whole(app: Path) -> None:
    data = parse_policy(HELM, F, app).service("delivery").snapshot()["environments"][0]
    request = ClusterRequest.from_dict({"target": data["target"]["deploy"],
                                        "connection": data["target"]["cluster"],
                                        "secrets": data["secrets"]})
    assert HelmTarget.from_dict(request.target).values_files[1].values == {
        "ingress": {"host": "delivery.qa.example.com"}}


@pytest.mark.parametrize(("tag", "version"), [
    ("v1.4.2", "1.4.2"), ("1.4.2", "1.4.2"), ("V2.0.0-rc.1", "2.0.0-rc.1"),
    ("1.4.2_build.7", "1.4.2+build.7"), ("1.4", None), ("latest", None), ("v01.2.3", None),
    ("vv1.2.3", None)])
def test_the_chart_version_an_image_tag_names(tag: str, version: str | None) -> None:
    assert chart_version_for_tag(tag) == version


def test_a_fixed_chart_version_ignores_the_tag_and_image_needs_a_version_tag() -> None:
    assert HelmTarget("c", "n", "r", "charts/x", version="2.1.0").chart_version("main") == "2.1.0"
    assert HelmTarget("c", "n", "r", "charts/x").chart_version("v1.4.2") == "1.4.2"
    with pytest.raises(ValueError, match="tag 'main' is not a semantic version"):
        HelmTarget("c", "n", "r", "charts/x").chart_version("main")


@pytest.mark.parametrize("data", [
    {"kind": "helm"},
    {**HelmTarget("c", "n", "r", "charts/x").to_dict(), "maxHistory": "10"},
    {**HelmTarget("c", "n", "r", "charts/x").to_dict(), "valuesFiles": [{"values": {}}]},
    {**HelmTarget("c", "n", "r", "charts/x").to_dict(),
     "valuesFiles": [{"path": "v.yaml", "values": [1]}]},
    {**HelmTarget("c", "n", "r", "charts/x").to_dict(), "secretValues": {"a.b": 1}},
    {**HelmTarget("c", "n", "r", "charts/x").to_dict(), "kind": "deployment"}])
def test_a_broken_snapshot_says_which_field(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"policy snapshot: target\.deploy"):
        HelmTarget.from_dict(data)


QH = f"{QA}.helm"
PH = f"{PROD}.helm"
CASES = [
    pytest.param("oci://myacr.azurecr.io/helm/delivery", "oci://other.azurecr.io/helm/delivery",
                 f"{F}:18: {QH}.chart: chart registry 'other.azurecr.io' is not one of the"
                 " policy's registries (main: myacr.azurecr.io, prod: prodacr.azurecr.io)",
                 id="chart-in-an-unknown-registry"),
    pytest.param("oci://myacr.azurecr.io/helm/delivery", "https://charts.example.com/delivery",
                 f"{F}:18: {QH}.chart: chart 'https://charts.example.com/delivery' must be"
                 " oci://<registry host>/<repository> or a chart folder relative to the app root",
                 id="chart-over-https"),
    pytest.param("oci://myacr.azurecr.io/helm/delivery",
                 "oci://myacr.azurecr.io/helm/delivery:1.4.2",
                 f"{F}:18: {QH}.chart: chart 'oci://myacr.azurecr.io/helm/delivery:1.4.2' names"
                 " a tag or digest: give the repository only (version picks the chart version)",
                 id="chart-with-a-tag"),
    pytest.param("oci://myacr.azurecr.io/helm/delivery", "oci://myacr.azurecr.io/Helm/Delivery",
                 f"{F}:18: {QH}.chart: chart 'oci://myacr.azurecr.io/Helm/Delivery': invalid"
                 " repository name 'Helm/Delivery': lowercase letters, digits and separators"
                 " (. _ __ -) in /-separated parts", id="chart-repository-not-lowercase"),
    pytest.param("oci://myacr.azurecr.io/helm/delivery", "../charts/delivery",
                 f"{F}:18: {QH}.chart: '../charts/delivery' must be a path relative to the app"
                 " root, inside it (such as charts/delivery): no leading /, no . or .. parts,"
                 " no empty parts", id="chart-folder-outside-the-app"),
    pytest.param("            version: image\n", "            version: v1.4.2\n",
                 f"{F}:36: {PH}.version: 'v1.4.2' must be 'image' (the image's version) or a"
                 " SemVer 2 version such as 1.4.2", id="version-with-a-v"),
    pytest.param("            version: image\n", "            version: 1.4\n",
                 f"{F}:36: {PH}.version: must be a string, not number 1.4",
                 id="version-a-number"),
    pytest.param("release: delivery-qa", "release: Delivery_QA",
                 f"{F}:19: {QH}.release: 'Delivery_QA' is not a Helm release name: up to 53 of"
                 " a-z, 0-9, '-' and '.', starting and ending with a letter or digit",
                 id="release-name"),
    pytest.param("release: delivery-qa", "release: " + "d" * 54,
                 f"{F}:19: {QH}.release: '{'d' * 54}' is not a Helm release name: up to 53 of"
                 " a-z, 0-9, '-' and '.', starting and ending with a letter or digit",
                 id="release-name-too-long"),
    pytest.param("          cluster: {name: prod-aks, kubeconfigSecret: prod-kubeconfig}\n"
                 "          namespace: delivery\n          helm:\n",
                 "          cluster: {name: qa-aks, kubeconfigSecret: qa-kubeconfig}\n"
                 "          namespace: delivery\n          helm:\n"
                 "            release: delivery-qa\n",
                 f"{F}:31: {PROD}: Helm release delivery/delivery-qa on qa-aks is already the"
                 " target of services.delivery.environments[0] (line 14)",
                 id="one-release-two-environments"),
    pytest.param("{replicaCount: 3, image: {pullPolicy: IfNotPresent}}",
                 "{replicaCount: 3, image: {repository: nginx}}",
                 f"{F}:20: {QH}.values: values sets image.repository: the product sets"
                 " image.repository to the image's repository (imageValues.repository); leave it"
                 " out of values", id="values-set-the-image"),
    pytest.param("{replicaCount: 3, image: {pullPolicy: IfNotPresent}}",
                 "{replicaCount: 3, image: nginx}",
                 f"{F}:20: {QH}.values: values sets image to a non-mapping: the product sets"
                 " image.repository to the image's repository (imageValues.repository); leave it"
                 " out of values", id="values-set-the-image-parent"),
    pytest.param("{replicaCount: 3, image: {pullPolicy: IfNotPresent}}",
                 "{replicaCount: 3, released: 2026-12-06}",
                 f"{F}:20: {QH}.values.released: must be a JSON value (quote dates and times),"
                 " not date", id="values-with-a-date"),
    pytest.param("{replicaCount: 3, image: {pullPolicy: IfNotPresent}}",
                 "{replicaCount: 3, limits: {cpu: .nan}}",
                 f"{F}:20: {QH}.values: limits.cpu is nan, which JSON cannot carry",
                 id="values-not-a-number"),
    pytest.param("[deploy/values.yaml, deploy/values-qa.yaml]", "[/etc/values.yaml]",
                 f"{F}:21: {QH}.valuesFiles[0]: '/etc/values.yaml' must be a path relative to"
                 " the app root, inside it (such as deploy/values-qa.yaml): no leading /, no ."
                 " or .. parts, no empty parts", id="values-file-absolute"),
    pytest.param("[deploy/values.yaml, deploy/values-qa.yaml]", "[./deploy/values.yaml]",
                 f"{F}:21: {QH}.valuesFiles[0]: './deploy/values.yaml' must be a path relative"
                 " to the app root, inside it (such as deploy/values-qa.yaml): no leading /, no"
                 " . or .. parts, no empty parts", id="values-file-dot"),
    pytest.param("{repository: app.image.name, digest: app.image.digest}",
                 "{repository: app.image.name}",
                 f"{F}:37: {PH}.imageValues.digest: required field is missing",
                 id="image-values-without-digest"),
    pytest.param("{repository: app.image.name, digest: app.image.digest}",
                 "{repository: app.image.name, digest: app.image.digest, tag: app.image.tag}",
                 f"{F}:37: {PH}.imageValues.tag: unknown field (expected one of: repository,"
                 " digest)", id="image-values-with-a-tag"),
    pytest.param("{repository: app.image.name, digest: app.image.digest}",
                 "{repository: app.image.name, digest: app..digest}",
                 f"{F}:37: {PH}.imageValues.digest: 'app..digest' is not a value key: a dotted"
                 " path of names such as image.repository (letters, digits, _ and -, not"
                 " starting with a digit or -)", id="image-values-bad-path"),
    pytest.param("{repository: app.image.name, digest: app.image.digest}",
                 "{repository: app.image, digest: app.image.digest}",
                 f"{F}:37: {PH}.imageValues: repository 'app.image' and digest"
                 " 'app.image.digest' must be separate value keys", id="image-values-nested"),
    pytest.param("{database.password: db-password}", "{database.password: db_password}",
                 f"{F}:22: {QH}.secretValues.database.password: invalid secret name:"
                 " 'db_password' contains '_'; Key Vault names may only use 0-9, a-z, A-Z and -",
                 id="secret-name"),
    pytest.param("{database.password: db-password}", "{image.digest: db-password}",
                 f"{F}:22: {QH}.secretValues.image.digest: 'image.digest' overlaps"
                 " 'image.digest', the key that receives the image's digest (imageValues)",
                 id="secret-value-on-the-image"),
    pytest.param("{database.password: db-password}",
                 "{database: db-password, database.password: db-password}",
                 f"{F}:22: {QH}.secretValues.database.password: 'database.password' overlaps"
                 " 'database'", id="secret-values-overlap"),
    pytest.param("{database.password: db-password}", "{9lives: db-password}",
                 f"{F}:22: {QH}.secretValues.9lives: key '9lives': '9lives' is not a value key: a"
                 " dotted path of names such as image.repository (letters, digits, _ and -, not"
                 " starting with a digit or -)", id="secret-value-key"),
    pytest.param("maxHistory: 5", "maxHistory: 0",
                 f"{F}:23: {QH}.maxHistory: must be greater than or equal to 1, not number 0",
                 id="max-history"),
    pytest.param("test: {timeout: 2m}", "test: yes please",
                 f"{F}:24: {QH}.test: must be true, false or a mapping such as {{timeout: 5m}}",
                 id="test-text"),
    pytest.param("test: {timeout: 2m}", "test: {timeout: 2}",
                 f"{F}:24: {QH}.test.timeout: invalid duration 2: a number needs a unit (use"
                 " 30m, 24h, 3d)", id="test-timeout-without-unit"),
    pytest.param("waitForChart: 15m", "waitForChart: 0s",
                 f"{F}:25: {QH}.waitForChart: duration '0s' must be positive",
                 id="wait-for-chart"),
    pytest.param("waitForChart: 15m", "waitForChart: null",
                 f"{F}:25: {QH}.waitForChart: must not be null (leave the field out to use the"
                 " default)",
                 id="wait-for-chart-null"),
    pytest.param("          namespace: delivery\n          helm:\n"
                 "            chart: oci://myacr.azurecr.io/helm",
                 "          namespace: delivery\n          deployment: delivery\n          helm:\n"
                 "            chart: oci://myacr.azurecr.io/helm",
                 f"{F}:14: {QA}: has both helm and deployment: a target is a Deployment"
                 " (deployment, container) or a Helm chart (helm)", id="helm-and-deployment"),
    pytest.param("          helm:\n            chart: oci://myacr.azurecr.io/prod/helm/delivery\n"
                 "            version: image\n"
                 "            imageValues: {repository: app.image.name, digest: app.image.digest}\n"
                 "            test: true\n", "",
                 f"{F}:31: {PROD}: needs deployment and container (a Deployment target) or helm"
                 " (a Helm chart target)", id="no-kind"),
    pytest.param('    tags:\n      semver: ">=1.0.0"\n', "    tags:\n      pattern: '.*'\n",
                 [f"{F}:{at}: {field}.version: version: image needs version tags, but"
                  " tags.pattern '.*' accepts 'main', which is not a version: set tags.semver"
                  " (such as '>=0.0.0') or a fixed chart version"
                  for at, field in ((17, QH), (36, PH))], id="image-version-pattern-too-wide"),
    pytest.param("oci://myacr.azurecr.io/prod/helm/delivery",
                 "oci://prodacr.azurecr.io/prod/helm/delivery",
                 f"{F}:35: {PH}.chart: chart registry 'prodacr.azurecr.io' is not"
                 " 'myacr.azurecr.io', the registry this environment's promotion writes to: the"
                 " chart is promoted with the image", id="promoted-chart-elsewhere"),
    pytest.param("oci://myacr.azurecr.io/prod/helm/delivery",
                 "oci://myacr.azurecr.io/prod/helm/shop",
                 f"{F}:35: {PH}.chart: chart 'oci://myacr.azurecr.io/prod/helm/shop' is not named"
                 " like 'oci://myacr.azurecr.io/helm/delivery' (line 18), the chart the first"
                 " Helm environment verifies: a release deploys one chart", id="another-chart"),
    pytest.param("oci://myacr.azurecr.io/prod/helm/delivery", "charts/delivery",
                 f"{F}:35: {PH}.chart: chart 'charts/delivery' is a folder, but the first Helm"
                 " environment verifies the OCI chart 'oci://myacr.azurecr.io/helm/delivery'"
                 " (line 18): a release deploys one chart", id="folder-after-oci"),
    pytest.param("        promotion: {namespace: prod/}\n", "",
                 f"{F}:34: {PH}.chart: chart 'oci://myacr.azurecr.io/prod/helm/delivery' differs"
                 " from 'oci://myacr.azurecr.io/helm/delivery' (line 18) but this environment has"
                 " no promotion to copy the chart there", id="other-chart-without-promotion"),
]


@pytest.mark.parametrize(("old", "new", "expected"), CASES)
def test_each_bad_helm_field_names_file_line_and_field(old: str, new: str,
                                                       expected: str | list[str]) -> None:
    assert problems(edit(old, new, HELM)) == ([expected] if isinstance(expected, str)
                                              else expected)


def test_the_line_in_each_case_is_the_line_of_the_field() -> None:
    assert line(HELM, "chart: oci://myacr.azurecr.io/helm/delivery") == 18
    assert line(HELM, "            version: image") == 36
    assert line(HELM, "{repository: app.image.name") == 37


def test_a_service_name_that_is_no_release_name_needs_a_release() -> None:
    text = HELM.replace("  delivery:\n    registry: main", "  Delivery_1:\n    registry: main")
    assert problems(text) == [
        f"{F}:34: services.Delivery_1.environments[1].target.helm: release defaults to the"
        " service name 'Delivery_1', which is not a Helm release name (up to 53 of a-z, 0-9,"
        " '-' and '.'); set release"]


def test_image_versions_need_a_tag_filter_and_a_fixed_version_does_not() -> None:
    text = edit('    tags:\n      semver: ">=1.0.0"\n', "", HELM)
    assert problems(text) == [
        f"{F}:{at}: {field}: version: image needs version tags, but service 'delivery' accepts"
        " every tag: set tags.semver (such as '>=0.0.0') or a fixed chart version"
        for at, field in ((15, f"{QH}.version"), (34, f"{PH}.version"))]
    fixed = edit("chart: oci://myacr.azurecr.io/helm/delivery",
                 "chart: oci://myacr.azurecr.io/helm/delivery\n            version: 2.0.0-rc.1",
                 edit("            version: image\n", "            version: 2.0.0\n", text))
    assert parse_policy(fixed).service("delivery").environments[1].helm.version == "2.0.0"


def test_a_version_pattern_passes_the_image_version_check() -> None:
    text = edit('    tags:\n      semver: ">=1.0.0"\n',
                "    tags:\n      pattern: 'v?\\d+\\.\\d+\\.\\d+(-rc\\.\\d+)?'\n", HELM)
    assert parse_policy(text).service("delivery").environments[0].helm is not None


def files_problems(text: str, root: Path) -> list[str]:
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, F, root)
    return [str(problem) for problem in raised.value.problems]


@pytest.mark.parametrize(("content", "message"), [
    ("- a\n- b\n", "values file 'deploy/values.yaml' is not a mapping of values"),
    ("a: [1\n", "values file deploy/values.yaml:2: YAML syntax error: while parsing a flow"
                " sequence expected ',' or ']', but got '<stream end>'"),
    ("a: 1\na: 2\n", "values file deploy/values.yaml:2: a: duplicate key (first at line 1)"),
    ("released: 2026-12-06\n", "values file 'deploy/values.yaml': released is a date (quote"
                               " dates and times)"),
    ("ports:\n  - {1: x}\n", "values file 'deploy/values.yaml': key 1 at ports[0] is not text"
                             " (quote it)"),
    ("x: " + "a" * 300_000 + "\n", "values file 'deploy/values.yaml' is larger than 256 KiB"),
])
def test_a_values_file_that_cannot_be_used_is_named(app: Path, content: str,
                                                    message: str) -> None:
    (app / "deploy" / "values.yaml").write_text(content)
    assert files_problems(HELM, app) == [f"{F}:21: {QH}.valuesFiles[0]: {message}"]


def test_an_empty_values_file_sets_nothing(app: Path) -> None:
    (app / "deploy" / "values.yaml").write_text("# nothing yet\n")
    helm = parse_policy(HELM, F, app).service("delivery").environments[0].helm
    assert helm is not None and helm.values_files[0] == ValuesFile("deploy/values.yaml", {})


def test_missing_values_files_and_links_out_of_the_app_are_named(app: Path,
                                                                  tmp_path: Path) -> None:
    (app / "deploy" / "values-qa.yaml").unlink()
    (tmp_path / "secret.yaml").write_text("password: x\n")
    (app / "deploy" / "values.yaml").unlink()
    (app / "deploy" / "values.yaml").symlink_to(tmp_path / "secret.yaml")
    root = app.resolve()
    assert files_problems(HELM, app) == [
        f"{F}:21: {QH}.valuesFiles[0]: values file 'deploy/values.yaml' leads outside the app"
        f" root {root}",
        f"{F}:21: {QH}.valuesFiles[1]: values file 'deploy/values-qa.yaml' does not exist under"
        f" the app root {root}"]


def test_a_chart_folder_needs_chart_yaml_under_the_app_root(app: Path) -> None:
    text = HELM.replace("oci://myacr.azurecr.io/prod/helm/delivery", "charts/delivery").replace(
        "oci://myacr.azurecr.io/helm/delivery", "charts/delivery")
    assert parse_policy(text, F, app).service("delivery").environments[1].helm.chart == \
        "charts/delivery"
    (app / "charts" / "delivery" / "Chart.yaml").unlink()
    root = app.resolve()
    assert files_problems(text, app) == [
        f"{F}:{at}: {field}.chart: chart folder 'charts/delivery' has no Chart.yaml (app root"
        f" {root})" for at, field in ((18, QH), (35, PH))]
    assert files_problems(text.replace("charts/delivery", "charts/shop"), app)[0] == (
        f"{F}:18: {QH}.chart: chart folder 'charts/shop' does not exist under the app root"
        f" {root}")


def test_the_checker_names_the_line_of_a_bad_helm_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(edit("maxHistory: 5", "maxHistory: 0", HELM))
    result = subprocess.run([sys.executable, "-m", "shared.policy", "check", str(path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (
        1, f"{path}:23: {QH}.maxHistory: must be greater than or equal to 1, not number 0\n", "")


def test_the_checker_reads_values_files_from_the_app_folder_it_runs_in(app: Path,
                                                                        tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(HELM)
    inside = subprocess.run([sys.executable, "-m", "shared.policy", "check", str(path)],
                            cwd=app / "deploy", capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (inside.returncode, inside.stdout) == (
        0, f"OK {path} (1 service; chart folders and valuesFiles checked against"
           f" {app.resolve()})\n")
    (app / "deploy" / "values-qa.yaml").unlink()
    explicit = subprocess.run([sys.executable, "-m", "shared.policy", "check", "--app-root",
                               str(app), str(path)], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert explicit.returncode == 1
    assert explicit.stdout.startswith(f"{path}:21: {QH}.valuesFiles[1]: values file"
                                      " 'deploy/values-qa.yaml' does not exist")


def test_the_checker_says_when_it_found_no_app_root(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(HELM)
    result = subprocess.run([sys.executable, "-m", "shared.policy", "check", str(path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (result.returncode, result.stdout) == (
        0, f"OK {path} (1 service; chart folders and valuesFiles NOT checked: no"
           " function_app.py at or above the current folder, pass --app-root)\n")


def test_an_environment_with_a_broken_helm_target_does_not_read(app: Path) -> None:
    data = parse_policy(HELM, F, app).service("delivery").snapshot()["environments"][1]
    del data["target"]["deploy"]["release"]
    with pytest.raises(ValueError, match=r"environment 'prod'\.target\.deploy\.release is missing"):
        Environment.from_dict(data)


def test_the_helm_example_in_the_reference_loads(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "release-policy.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```yaml\n")[1:]]
    example = blocks[0]
    (environments,) = [block for block in blocks if "          helm:\n" in block]
    policy = example[:example.index("    environments:\n")] + "    environments:\n" + environments
    (tmp_path / "function_app.py").write_text("")
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "values-qa.yaml").write_text("ingress: {host: delivery.qa}\n")
    qa, prod = parse_policy(policy, "docs example", tmp_path).service("delivery").environments
    assert qa.helm is not None and prod.helm is not None
    assert qa.helm.values_files == (ValuesFile("deploy/values-qa.yaml",
                                               {"ingress": {"host": "delivery.qa"}}),)
    assert (prod.helm.chart, prod.helm.release, prod.image_repository) == (
        "oci://contosoacr.azurecr.io/prod/helm/delivery", "delivery", "prod/delivery")
    target = json.loads(text.split('```json\n"target": ', 1)[1].split("```", 1)[0])
    assert HelmTarget.from_dict(target["deploy"]).to_dict() == target["deploy"]


def test_release_values_layer_files_values_secrets_and_the_image(app: Path) -> None:
    (app / "deploy" / "values.yaml").write_text(
        "replicaCount: 2\nimage: {repository: nginx, tag: '1.0'}\nports: [80, 443]\n"
        "database: {host: db, password: from-file}\n")
    (app / "deploy" / "values-qa.yaml").write_text("ports: [8080]\ndatabase: {host: db-qa}\n")
    helm = parse_policy(HELM, F, app).service("delivery").environments[0].helm
    assert helm is not None
    assert helm.release_values("127.0.0.1:5000/delivery", DIGEST, {"db-password": "s3cret"}) == {
        "replicaCount": 3, "ports": [8080],
        "image": {"repository": "127.0.0.1:5000/delivery", "tag": "1.0", "digest": DIGEST,
                  "pullPolicy": "IfNotPresent"},
        "database": {"host": "db-qa", "password": "s3cret"}}
    assert helm.values_files[0].values is not None
    assert helm.values_files[0].values["image"] == {"repository": "nginx", "tag": "1.0"}
    with pytest.raises(ValueError, match="secret 'db-password' .for value database.password."):
        helm.release_values("r", DIGEST, {})


def test_release_values_refuse_a_values_file_that_was_not_read() -> None:
    helm = parse_policy(HELM, F).service("delivery").environments[0].helm
    assert helm is not None
    with pytest.raises(ValueError, match="values file deploy/values.yaml was not read"):
        helm.release_values("r", DIGEST, {"db-password": "x"})


def test_image_keys_replace_what_a_values_file_put_in_their_way() -> None:
    helm = HelmTarget("qa-aks", "delivery", "delivery", "charts/delivery",
                      values_files=(ValuesFile("v.yaml", {"app": {"image": "nginx:1.0"}}),),
                      image_values=ImageValues("app.image.name", "app.image.digest"))
    assert helm.release_values("r", DIGEST, {}) == {
        "app": {"image": {"name": "r", "digest": DIGEST}}}
    assert helm.values_files[0].values == {"app": {"image": "nginx:1.0"}}
