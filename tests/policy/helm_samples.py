"""A valid policy whose environments release a Helm chart, and an app folder for its files."""

from __future__ import annotations

from pathlib import Path

from policy_samples import BASE, edit

QA_HELM = """\
          helm:
            chart: oci://myacr.azurecr.io/helm/delivery
            release: delivery-qa
            values: {replicaCount: 3, image: {pullPolicy: IfNotPresent}}
            valuesFiles: [deploy/values.yaml, deploy/values-qa.yaml]
            secretValues: {database.password: db-password}
            maxHistory: 5
            test: {timeout: 2m}
            waitForChart: 15m
"""
PROD_HELM = """\
          helm:
            chart: oci://myacr.azurecr.io/prod/helm/delivery
            version: image
            imageValues: {repository: app.image.name, digest: app.image.digest}
            test: true
"""

# BASE with both environments on Helm; QA takes two values files from the app.
HELM = edit("          deployment: delivery\n          container: web\n", PROD_HELM,
            edit("          deployment: delivery\n          container: app\n", QA_HELM, BASE))

VALUES = "replicaCount: 2\nresources:\n  limits: {memory: 128Mi}\n"
VALUES_QA = "ingress:\n  host: delivery.qa.example.com\n"


def app_folder(root: Path) -> Path:
    """An app root holding what HELM names: function_app.py, values files, a chart folder."""
    (root / "deploy").mkdir(parents=True)
    (root / "function_app.py").write_text("")
    (root / "deploy" / "values.yaml").write_text(VALUES)
    (root / "deploy" / "values-qa.yaml").write_text(VALUES_QA)
    (root / "charts" / "delivery").mkdir(parents=True)
    (root / "charts" / "delivery" / "Chart.yaml").write_text(
        "apiVersion: v2\nname: delivery\nversion: 0.1.0\n")
    return root


def line(text: str, needle: str) -> int:
    """The 1-based line of the single occurrence of `needle` in `text`."""
    assert text.count(needle) == 1, f"{needle!r} occurs {text.count(needle)} times"
    return text[:text.index(needle)].count("\n") + 1
