"""Pinning a release's Helm chart: resolved at the first Helm environment (waiting, with
durable timers, while CI has not pushed the chart version yet), promoted beside the image,
and checked by digest wherever a later environment takes it from.

Scheduled only for stages with a Helm target: releases of Deployment targets (and every
history recorded before Helm targets existed) schedule nothing here.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import replace
from datetime import timedelta
from typing import Any

from orchestrations.attempts import attempt
from orchestrations.context import OrchestrationContext
from shared.helm.pins import PinnedChart
from shared.policy.durations import format_duration
from shared.releases.charts import (
    chart_promotion_request,
    chart_request,
    helm_of,
    moves_with_promotion,
)
from shared.releases.failures import said
from shared.releases.plan import ReleasePlan, Stage

CHART_POLL = timedelta(seconds=30)


def pin_chart(context: OrchestrationContext, plan: ReleasePlan, stage: Stage,
              pinned: PinnedChart | None,
              step: Callable[[str, str | None], None]) -> Generator[Any, Any, PinnedChart | str]:
    """The chart `stage` deploys, or why there is none (a sentence for the outcome).

    `pinned` is what an earlier environment pinned; `step(name, detail)` tells the journal."""
    helm = helm_of(stage)
    if pinned is not None and pinned.source == helm.chart:
        return pinned
    try:
        if pinned is not None and moves_with_promotion(stage, pinned):
            step("promote chart", f"{pinned.reference} to {helm.chart}")
            yield from attempt(context, "promote_image",
                               chart_promotion_request(plan, stage, pinned))
            return replace(pinned, source=helm.chart)
        give_up = context.current_utc_datetime + helm.wait_for_chart
        while True:
            found = yield from attempt(context, "resolve_chart",
                                       chart_request(plan, stage, pinned))
            if found.get("chart"):
                return PinnedChart.from_dict(found["chart"])
            if context.current_utc_datetime >= give_up:
                return (f"nothing deployed in {stage.name}: {found.get('absent')} after"
                        f" waiting {format_duration(helm.wait_for_chart)} for it")
            step("waiting for chart", str(found.get("absent")))
            yield context.create_timer(context.current_utc_datetime + CHART_POLL)
    except Exception as failure:
        return f"nothing deployed in {stage.name}: {said(failure)}"
