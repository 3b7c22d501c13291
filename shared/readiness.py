"""What the app's settings lack for its functions to work: the start-up log and `/api/health`.

Combines the approval settings the policy's gates need (`shared/approvals/readiness.py`) with
the settings that binding expressions name (the reconciler's `%RECONCILE_SCHEDULE%`, which the
Functions host cannot resolve without it). Names settings, never their values.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from shared.approvals.readiness import app_problems as approval_problems
from shared.secrets.references import SettingProblem

log = logging.getLogger(__name__)
# Settings a trigger's binding expression names, and the function that cannot run without it.
BINDING_SETTINGS = {"RECONCILE_SCHEDULE": "reconcile_registries"}


def binding_problems(environ: Mapping[str, str]) -> list[SettingProblem]:
    """One problem per binding-expression setting that is missing or empty."""
    return [SettingProblem(setting, f"{setting} is not set: the function {function} cannot"
                                    " run (the host cannot resolve its schedule); set it, e.g."
                                    " 0 */5 * * * * for every 5 minutes")
            for setting, function in BINDING_SETTINGS.items()
            if not (environ.get(setting) or "").strip()]


def app_problems(environ: Mapping[str, str] | None = None) -> list[SettingProblem]:
    """Every problem of the app's settings, binding expressions first."""
    environ = os.environ if environ is None else environ
    return [*binding_problems(environ), *approval_problems(environ)]


def log_app_problems(environ: Mapping[str, str] | None = None) -> list[SettingProblem]:
    """Log each problem as a configuration error (setting names only); the problems."""
    found = app_problems(environ)
    for problem in found:
        log.error("configuration error: %s", problem.message)
    return found
