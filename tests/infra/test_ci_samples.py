"""The CI samples: valid for GitHub Actions and Azure Pipelines (check-jsonschema's built-in
schemas, offline), and the tags they push are the ones the release policy releases."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.policy.loader import load_policy
from tests.infra.drift import ROOT

GITHUB = ROOT / "ci-samples" / "github" / "release.yml"
PIPELINES = ROOT / "ci-samples" / "azure-pipelines" / "release.yml"
SCHEMA_ARGS = {
    GITHUB: ["--builtin-schema", "vendor.github-workflows"],
    # The Azure Pipelines schema has patterns only Python's regex dialect compiles.
    PIPELINES: ["--builtin-schema", "vendor.azure-pipelines", "--data-transform",
                "azure-pipelines", "--regex-variant", "python"],
}


def _check(path: Path, sample: Path | None = None) -> subprocess.CompletedProcess[str]:
    """check-jsonschema over `path` with the schema of `sample` (default: `path` itself)."""
    args = SCHEMA_ARGS[sample or path]
    return subprocess.run([sys.executable, "-m", "check_jsonschema", *args, str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


def _steps(path: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    steps: list[dict[str, Any]] = document["jobs"]["release"]["steps"] if path == GITHUB \
        else document["steps"]
    return steps


def _branch_step(path: Path) -> str:
    return next(step.get("run") or step["bash"] for step in _steps(path)
                if "branch name" in step.get("name", step.get("displayName", "")))


def _parse_branch(path: Path, branch: str, tmp_path: Path) -> dict[str, str] | None:
    """Run the sample's own branch-parsing step in bash; its outputs, or None when it refuses."""
    outputs = tmp_path / "outputs"
    outputs.write_text("")
    env = {**os.environ, "GITHUB_REF_NAME": branch, "GITHUB_OUTPUT": str(outputs),
           "BUILD_SOURCEBRANCH": f"refs/heads/{branch}"}
    done = subprocess.run(["bash", "-c", _branch_step(path)], env=env, capture_output=True,
                          text=True, timeout=30, check=False)
    if done.returncode != 0:
        return None
    if path == GITHUB:
        return dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    return dict(re.findall(r"##vso\[task\.setvariable variable=(\w+)\](.*)", done.stdout))


@pytest.mark.parametrize("path", [GITHUB, PIPELINES], ids=["github", "azure-pipelines"])
def test_the_sample_is_valid_for_its_ci(path: Path) -> None:
    done = _check(path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("path", "old", "new"), [
    (GITHUB, "    runs-on: ubuntu-latest\n", "    run-on: ubuntu-latest\n"),
    (PIPELINES, "  - bash: make -C", "  - bsh: make -C"),
], ids=["github", "azure-pipelines"])
def test_the_schema_check_refuses_a_broken_sample(path: Path, old: str, new: str,
                                                  tmp_path: Path) -> None:
    broken = tmp_path / "release.yml"
    broken.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    assert broken.read_text() != path.read_text()
    assert _check(broken, path).returncode == 1


@pytest.mark.parametrize("path", [GITHUB, PIPELINES], ids=["github", "azure-pipelines"])
def test_release_branches_give_the_service_and_a_tag_the_release_policy_releases(
        path: Path, tmp_path: Path) -> None:
    policy = load_policy(ROOT / "release-policy.yaml")
    service = policy.services["delivery"]

    released = _parse_branch(path, "release/delivery/v1.4.2", tmp_path)
    assert released == {"service": "delivery", "version": "1.4.2"}
    assert service.accepts_tag(released["version"]) == (True, "")

    candidate = _parse_branch(path, "release/delivery/v1.5.0-rc.1", tmp_path)
    assert candidate == {"service": "delivery", "version": "1.5.0-rc.1"}
    assert service.accepts_tag(candidate["version"])[0] is False

    for branch in ("release/delivery/1.4.2", "release/delivery/v1.4", "release/Delivery/v1.4.2",
                   "release/delivery/v01.4.2", "main", "release/delivery/v1.4.2/extra"):
        assert _parse_branch(path, branch, tmp_path) is None, branch


@pytest.mark.parametrize("path", [GITHUB, PIPELINES], ids=["github", "azure-pipelines"])
def test_the_sample_signs_in_with_oidc_and_stores_no_secret(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "secrets." not in text and "password:" not in text.lower()
    if path == GITHUB:
        document = yaml.safe_load(text)
        assert document["permissions"] == {"contents": "read", "id-token": "write"}
        login = next(step for step in _steps(path) if step.get("uses", "").startswith(
            "azure/login@"))
        assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}
    else:
        cli = next(step for step in _steps(path) if step.get("task") == "AzureCLI@2")
        assert cli["inputs"]["azureSubscription"] == "release-acr"


def test_the_samples_do_not_run_in_this_repository() -> None:
    assert not (ROOT / ".github" / "workflows").exists()
    assert not (ROOT / "azure-pipelines.yml").exists()
