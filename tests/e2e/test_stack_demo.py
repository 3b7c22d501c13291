"""`python -m sandbox demo` (what `make demo` runs) on a fresh stack of its own: 1.0.0 reaches
production through the approval page, 1.0.1 crashes there and is rolled back, production runs
1.0.0 again, exit code 0, and the demo's stack leaves no process behind. Each environment is a
Helm release: the demo shows QA's `helm upgrade` to revision 2 with its error-rate analysis
(measured by the stack's Prometheus) and production's history after `helm rollback`, as read
from Helm's records in the cluster. Then `web`: 1.0.0 through QA's canary and a blue-green
switch in production (slot web before, web-green after), 1.0.1 with errors aborted at the
canary's first step with QA's stable web untouched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox.stack_helpers import REPO, command_line, python_env

DEMO_SECONDS = 400


@pytest.mark.timeout(DEMO_SECONDS + 30)
def test_demo_ends_with_production_back_on_the_good_version(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "demo", "--data-dir", str(tmp_path)],
        cwd=REPO, env={**python_env(), "COLUMNS": "200"}, capture_output=True, text=True,
        timeout=DEMO_SECONDS)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    lines = output.splitlines()
    for step in ("✓ push delivery 1.0.0", "✓ approve through the approval page as "
                 "release-manager@example.com — Approved", "✓ prod: promote, deploy, watch, "
                 "verify — Completed", "✓ push delivery 1.0.1 (built to crash in prod)",
                 "RolledBack: rollout failed", "✓ production runs delivery 1.0.0 again"):
        assert any(step in line for line in lines), f"{step!r} missing:\n{output[-4000:]}"
    flat = " ".join(line.strip() for line in lines)  # rich wraps long lines at spaces
    for shown in ("✓ QA: helm upgrade --install 1.0.1, watch the rollout, helm test, error-rate "
                  "analysis — helm revision 2 (chart delivery 1.0.1); helm test: 1 test hook "
                  "succeeded (delivery-test-health); analysis passed (3 measurements): "
                  "error-rate: 0 (within x ≤ 0.1)",
                  "helm history: 1 superseded 1.0.0, 2 failed 1.0.1, 3 deployed 1.0.0 "
                  "(Rollback to 1)", "helm history delivery -n prod",
                  "✓ QA: canary web 1.0.0: 1, then 2 of 4 pods, error-rate analysis at each step"
                  " — at canary 1 of 4 pods: analysis passed (3 measurements): error-rate: 0",
                  "promoted: web runs the new version; web-canary retired",
                  "✓ prod: web before the switch — web answers from slot web (0.9.0)",
                  "web-preview switched to web-green; behind web-preview: analysis passed",
                  "web switched to web-green; behind web: analysis passed",
                  "✓ prod: web after the switch — web answers from slot web-green (1.0.0);"
                  " before: slot web (0.9.0)",
                  "✓ push web 1.0.0 — image sha256:", "its canary in QA runs meanwhile",
                  "✓ push web 1.0.1 (built to answer 50% of requests with 500)",
                  "✓ QA: canary web 1.0.1 at 1 of 4 pods, its error rate measured — RolledBack:"
                  " analysis failed: analysis",
                  "(at canary 1 of 4 pods)",
                  "✓ QA: stable web untouched, web-canary at zero — web: revision 2, 4 pods on"
                  " 1.0.0 (sha256:"):
        assert shown in flat, f"{shown!r} missing:\n{output[-4000:]}"
    assert "?token=" not in output  # personal links hold tokens: the demo never prints them
    left = [pid for pid in _pids() if str(tmp_path) in command_line(pid)]
    assert left == [], f"processes left behind: {[command_line(pid) for pid in left]}"


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
