"""`measure_analysis`: one round of an environment's analysis (every metric once).

The request carries the analysis as the policy snapshot wrote it, the query variables and the
environment's secrets spec (names only); with a `job` metric also the deploy `target` and the
cluster `connection` (where its Job runs). The answer is the round's `Evidence` as JSON, and
with `record` (release, environment, round, time) the round is kept in the ledger too. A
request that cannot be read is a permanent failure; a provider that cannot be reached is a
measurement without data, not a failed activity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from activities.boundary import marks_failures
from blueprints import blueprint
from shared.analysis.jobs import JobSite
from shared.analysis.measurements import Providers, measure
from shared.app_context import app_ledger
from shared.cluster.errors import InvalidTarget
from shared.failure_kinds import Permanent
from shared.ledger.evidence import EvidenceBook
from shared.policy.analysis import Analysis
from shared.secrets.sources import for_spec

bp = blueprint()


class InvalidAnalysisRequest(Permanent, ValueError):
    """A `measure_analysis` request that cannot be read."""


@bp.activity_trigger(input_name="request")
@marks_failures
def measure_analysis(request: dict[str, Any]) -> dict[str, Any]:
    """Measure every metric of `analysis` once with `variables`; the round's evidence."""
    if not isinstance(request, dict):
        raise InvalidAnalysisRequest("measure_analysis needs a JSON object")
    try:
        analysis = Analysis.from_dict(request.get("analysis"))
    except (ValueError, TypeError, KeyError) as bad:
        raise InvalidAnalysisRequest(f"analysis: {bad}") from None
    variables = request.get("variables")
    if analysis is None or not isinstance(variables, dict) \
            or not all(isinstance(v, str) for v in variables.values()):
        raise InvalidAnalysisRequest("measure_analysis needs an analysis and text variables")
    jobs = None
    if "target" in request:  # where the analysis's job metrics run
        try:
            jobs = JobSite.from_request(request, str(variables.get("environment", "")))
        except InvalidTarget as bad:
            raise InvalidAnalysisRequest(f"target: {bad}") from None
    source = for_spec(request.get("secrets") or {})
    evidence = measure(analysis, variables, Providers(source.get, jobs=jobs))
    record = request.get("record")
    if isinstance(record, dict):  # every measurement is evidence: kept in the ledger
        try:
            at = datetime.fromisoformat(str(record["at"]))
            EvidenceBook.beside(app_ledger()).record(
                str(record["releaseId"]), str(record["environment"]), int(record["round"]),
                at, evidence)
        except (KeyError, TypeError, ValueError) as bad:
            raise InvalidAnalysisRequest(f"record: {bad}") from None
    return evidence.to_dict()
