"""`python -m shared.policy check`: output and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from policy_samples import BASE, edit

from shared.policy.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.yaml"
    path.write_text(BASE)
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(edit("deadline: 72h", "deadline: 72x", edit("repository: delivery",
                                                                 "repository: 4")))
    return path


def test_the_sample_checks_out_as_a_subprocess() -> None:
    result = subprocess.run([sys.executable, "-m", "shared.policy", "check",
                             "release-policy.yaml"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "OK release-policy.yaml (1 service)\n", "")


def test_a_bad_file_prints_its_problems_as_a_subprocess(bad: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "shared.policy", "check", str(bad)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{bad}:9: services.delivery.repository: must be a string, not number 4",
        f"{bad}:22: services.delivery.environments[1].gate.deadline: invalid duration '72x'"
        " (use 30m, 24h, 3d)"]


def test_all_files_are_checked_and_any_failure_fails(good: Path, bad: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(good), str(bad), str(good)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"OK {good} (1 service)"
    assert lines[1].startswith(f"{bad}:9: ")
    assert lines[-1] == f"OK {good} (1 service)"
    assert len(lines) == 4


def test_several_services_are_counted(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(BASE + """\
  billing:
    registry: main
    repository: billing
    environments:
      - name: qa
        target:
          cluster: {name: qa-aks, kubeconfigSecret: qa-kubeconfig}
          namespace: billing
          deployment: billing
          container: app
""")
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out == f"OK {path} (2 services)\n"


def test_a_missing_file_is_a_problem_not_a_usage_error(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    missing = tmp_path / "missing.yaml"
    assert main(["check", str(missing)]) == 1
    assert capsys.readouterr().out == f"{missing}: cannot read: No such file or directory\n"


@pytest.mark.parametrize("argv", [[], ["check"], ["lint", "x.yaml"], ["check", "--bogus", "x"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage: python -m shared.policy" in capsys.readouterr().err


def test_usage_error_exit_code_as_a_subprocess() -> None:
    result = subprocess.run([sys.executable, "-m", "shared.policy"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage:" in result.stderr
