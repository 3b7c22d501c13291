"""Running an environment's analysis: one measurement round per interval, durable timers
between them (no activity sleeps through a bake time), until `Analysis.verdict` decides.

Scheduled only for environments whose policy has an `analysis` (histories of releases
without one never see it). A round is one `measure_analysis` call.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from orchestrations.attempts import attempt
from orchestrations.context import OrchestrationContext
from shared.analysis.measurements import fatal, outcome_of
from shared.deploy.evidence import Evidence
from shared.policy.analysis import Outcome
from shared.releases.plan import Stage
from shared.text import one_line

REASON_LIMIT = 400


def analyse(context: OrchestrationContext, stage: Stage, variables: Mapping[str, str],
            release_id: str | None = None, step: Callable[[str, str], None] | None = None,
            first_round: int = 1) -> Generator[Any, Any, Analysed]:
    """How the analysis ended: why it did not pass (None when it did), its evidence line.

    Each round is recorded in the ledger as `release_id`'s evidence (by the activity that
    measures it), numbered from `first_round` (an environment analysed at several steps
    numbers on); `step(name, detail)` hears each round's summary."""
    analysis = stage.environment.analysis
    assert analysis is not None  # scheduled only for a stage with an analysis
    outcomes: dict[str, list[Outcome]] = {metric.name: [] for metric in analysis.metrics}
    request = {"analysis": analysis.to_dict(), "variables": dict(variables),
               "secrets": stage.environment.secrets}
    if any(metric.provider.KIND == "job" for metric in analysis.metrics):
        # where its Jobs run; only then, so other analyses' requests stay as recorded
        request.update(target=stage.environment.deploy_target,
                       connection=stage.environment.cluster)
    verdict, line = None, ""
    for number in range(1, analysis.measurements + 1):  # each one interval after the last
        delay = analysis.interval + (analysis.initial_delay or timedelta(0) if number == 1
                                     else timedelta(0))
        yield context.create_timer(context.current_utc_datetime + delay)
        recorded = first_round - 1 + number
        record = {"releaseId": release_id, "environment": stage.name, "round": recorded,
                  "at": context.current_utc_datetime.isoformat()} if release_id else None
        evidence = Evidence.from_dict((yield from attempt(
            context, "measure_analysis", {**request, "round": recorded, "record": record})))
        for measurement in evidence.measurements:
            outcomes.setdefault(measurement.name, []).append(outcome_of(measurement))
        line = f"analysis {number}/{analysis.measurements}: {evidence.summary}"
        if step is not None:
            step("analysis", one_line(line, REASON_LIMIT))
        verdict = "failed" if fatal(evidence) else analysis.verdict(outcomes)
        if verdict is not None:
            break
    if verdict in (None, "passed"):
        return Analysed(None, one_line(f"analysis passed ({analysis.measurements}"
                                       f" measurements): {evidence.summary}", REASON_LIMIT),
                        rounds=number)
    return Analysed(one_line(f"analysis {verdict}: {line}", REASON_LIMIT), line,
                    inconclusive=verdict == "inconclusive", rounds=number)


@dataclass(frozen=True)
class Analysed:
    """How an analysis ended: `failure` None when it passed; `inconclusive` when it could
    neither pass nor fail (a person decides)."""

    failure: str | None
    evidence: str
    inconclusive: bool = False
    rounds: int = 0  # how many rounds it measured
