"""Whether this app can open its policy's approval gates now: the gates against the settings.

Read by `shared/readiness.py` (the start-up log and `/api/health`); a release
checks the same before its first environment (the `check_approval_settings` activity).
Problems name settings and environments, never a value. Does not sign or verify anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from shared.approvals.keys import problems
from shared.policy.errors import PolicyError
from shared.policy.model import Gate, Policy
from shared.secrets.references import SettingProblem


def policy_gates(policy: Policy) -> dict[str, Gate]:
    """`service/environment` → gate, for every environment of the policy with a gate."""
    return {f"{name}/{environment.name}": environment.gate
            for name, service in policy.services.items()
            for environment in service.environments if environment.gate is not None}


def app_problems(environ: Mapping[str, str] | None = None) -> list[SettingProblem]:
    """The approval settings' problems for the app's policy; every approval setting is
    checked when the policy cannot be read (its gates are unknown), none but the sign-in
    setting when it has no gate."""
    from shared.app_context import app_policy  # the app's cached policy

    environ = os.environ if environ is None else environ
    try:
        gates: dict[str, Gate] | None = policy_gates(app_policy())
    except PolicyError:
        gates = None
    return problems(environ, gates)

