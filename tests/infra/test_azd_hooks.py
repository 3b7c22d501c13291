"""The azd hooks of azure.yaml, run in sh with a stand-in `azd` on PATH that records its
arguments (azd itself cannot be installed here)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.infra.drift import ROOT

HOOKS = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))["hooks"]


def _run_hook(name: str, tmp_path: Path, **env: str) -> list[str]:
    """Run hook `name` as azd would (sh, from the project root); the azd calls it made."""
    calls = tmp_path / "calls"
    calls.write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stand_in = bin_dir / "azd"
    stand_in.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    stand_in.chmod(0o755)
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("REGISTRY_EVENTS", "APP_DEPLOYED")}
    environment.update(env, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    hook = HOOKS[name]
    assert hook["shell"] == "sh"
    subprocess.run(["sh", "-c", hook["run"]], cwd=ROOT, env=environment, check=True, timeout=30)
    return calls.read_text().splitlines()


def test_the_first_deploy_with_event_grid_provisions_again_for_the_subscription(
        tmp_path: Path) -> None:
    assert _run_hook("postdeploy", tmp_path) == ["env set APP_DEPLOYED true",
                                                 "provision --no-prompt"]
    assert _run_hook("postdeploy", tmp_path, REGISTRY_EVENTS="eventGrid",
                     APP_DEPLOYED="false") == ["env set APP_DEPLOYED true",
                                               "provision --no-prompt"]


@pytest.mark.parametrize("env", [{"APP_DEPLOYED": "true"}, {"REGISTRY_EVENTS": "webhook"},
                                 {"REGISTRY_EVENTS": "none"}])
def test_later_deploys_and_other_event_modes_provision_nothing(env: dict[str, str],
                                                               tmp_path: Path) -> None:
    assert _run_hook("postdeploy", tmp_path, **env) == []


def test_azd_down_resets_the_flag_so_the_next_up_starts_without_the_subscription(
        tmp_path: Path) -> None:
    assert _run_hook("postdown", tmp_path, APP_DEPLOYED="true") == ["env set APP_DEPLOYED false"]
