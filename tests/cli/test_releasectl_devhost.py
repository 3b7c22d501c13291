"""`releasectl` against the app in devhost: tables, JSON, refusals and exit codes.

Real parts (see tests/dashboard/dashboard_stack.py): a pushed release waits at production's
gate, v1.0.0 runs in QA and production per the ledger, v1.0.1 was rolled back.
"""

from __future__ import annotations

import json
import subprocess
import sys

from devhost.testing import REPO, free_port
from sandbox.policy_text import APPROVER
from tests.cli.cli_runner import ctl, one_error_line
from tests.dashboard.dashboard_stack import (
    SERVICE,
    V1,
    V2,
    DashboardStack,
)


def test_list_and_show_as_tables_and_json(seeded_dashboard: DashboardStack) -> None:
    waiting, digest = seeded_dashboard.waiting_release("v1.0.2")

    code, out, err = ctl("list", url=seeded_dashboard.url)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert all(line == line.rstrip() for line in lines)  # piped: no trailing cell padding
    assert lines[0].split() == ["RELEASE", "SERVICE", "VERSION", "STATE", "WHERE", "CREATED",
                                "REASON"]
    assert [line.split()[0] for line in lines[1:4]] == [waiting, V2, V1]
    assert "WaitingForApproval" in lines[1] and "prod" in lines[1]
    assert "RolledBack" in lines[2] and "CrashLoopBackOff" in lines[2]

    code, out, _ = ctl("list", "--service", SERVICE, "--state", "waitingforapproval", "--json",
                       url=seeded_dashboard.url)
    assert code == 0
    (row,) = json.loads(out)
    assert (row["releaseId"], row["digest"], row["state"]) == (waiting, digest,
                                                                "WaitingForApproval")

    code, out, _ = ctl("show", waiting, url=seeded_dashboard.url)
    assert code == 0
    assert f"Release      {waiting}" in out and "WaitingForApproval" in out
    assert "Waiting at the prod gate until" in out and "(0 of 1 approvals, 0 reminders)" in out
    assert "Timeline" in out and "qa" in out and "Healthy" in out

    shown_text = out
    code, out, _ = ctl("--json", "show", waiting, url=seeded_dashboard.url)
    shown = json.loads(out)
    assert code == 0 and shown["releaseId"] == waiting
    gate = shown["durable"]["customStatus"]["waitingFor"]
    assert gate["environment"] == "prod"
    (link,) = gate["approvalLinks"]
    assert f"  approval page for {APPROVER}: {link['url']}" in shown_text.splitlines()


def test_refusals_exit_1_with_the_api_reason(seeded_dashboard: DashboardStack) -> None:
    waiting, _ = seeded_dashboard.waiting_release("v1.0.2")
    cases = [
        (("show", f"{SERVICE}-0000000000000000"),
         f"no release or operation '{SERVICE}-0000000000000000'"),
        (("list", "--state", "Nope"), "unknown state 'Nope'"),
        (("rollback", V1, "--environment", "prod", "--reason", "bad"),
         f"no earlier good release of {SERVICE} in prod to roll back to"),
        (("rollback", V1, "--environment", "staging", "--reason", "bad"),
         "has no environment 'staging'"),
        (("redeploy", waiting, "-e", "prod", "-r", "again"),
         f"{waiting} was never deployed to prod"),
        (("approve", V1, "--token", "t0k3n"), f"{V1} is not waiting at a gate (state "
                                              "Completed)"),
    ]
    for argv, words in cases:
        code, out, err = ctl(*argv, url=seeded_dashboard.url)
        assert code == 1, (argv, out, err)
        assert words in one_error_line(err), (argv, err)
        assert out == ""
        code, out, err = ctl(*argv, "--json", url=seeded_dashboard.url)
        assert code == 1 and words in json.loads(out)["error"], (argv, out)
    assert "t0k3n" not in err


def test_redeploy_starts_an_operation(seeded_dashboard: DashboardStack) -> None:
    code, out, err = ctl("redeploy", V1, "--environment", "qa", "--reason", "match prod",
                         url=seeded_dashboard.url)
    assert (code, err) == (0, ""), out
    operation = f"redeploy:{SERVICE}:qa:1"
    assert out.startswith(f"Started {operation}: redeploy of {SERVICE} in qa (v1.0.0 → "
                          "v1.0.0) by anonymous")
    assert f"releasectl show {operation}" in out
    done = seeded_dashboard.until(operation,
                                  lambda s: s["runtimeStatus"] not in ("Pending", "Running"))
    assert done["output"]["outcome"] == "Completed", done
    code, out, _ = ctl("show", operation, "--json", url=seeded_dashboard.url)
    assert code == 0 and json.loads(out)["kind"] == "redeploy"
    page = seeded_dashboard.get(f"/api/dashboard/releases/{operation}")  # an id with colons
    assert page.status_code == 200 and "delivery v1.0.0 (redeploy)" in page.text


def test_usage_errors_exit_2_and_nothing_is_sent() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    for argv, words in [((), "the following arguments are required: COMMAND"),
                        (("rollback", V1, "-e", "prod"), "required: --reason/-r"),
                        (("approve",), "give the approval link"),
                        (("approve", V1), "is a release id: give its approval --token"),
                        (("approve", "http://h/x?token=a", "--token", "b"),
                         "leave out --token"),
                        (("list", "--limit", "many"), "invalid int value"),
                        (("list", "--url", "ftp://somewhere"), "--url must be an absolute")]:
        code, out, err = ctl(*argv, url=nowhere)
        assert code == 2, (argv, err)
        assert words in one_error_line(err), (argv, err)


def test_unreachable_api_exits_3() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    code, out, err = ctl("list", url=nowhere)
    assert code == 3 and out == ""
    assert one_error_line(err) == (f"cannot reach the release API at {nowhere}: "
                                   "connection refused")
    code, out, _ = ctl("list", "--json", "--url", nowhere, "--key", "s3cret-key")
    assert code == 3 and "cannot reach" in json.loads(out)["error"]
    assert "s3cret-key" not in out


def test_python_dash_m_entry_point(seeded_dashboard: DashboardStack) -> None:
    run = subprocess.run([sys.executable, "-m", "releasectl", "list", "--json"], cwd=REPO,
                         capture_output=True, text=True, timeout=60,
                         env={"RELEASE_API_URL": seeded_dashboard.url, "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert [row["releaseId"] for row in json.loads(run.stdout)] == [V2, V1]
    run = subprocess.run([sys.executable, "-m", "releasectl", "show"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "RELEASE_ID" in run.stderr
