"""Cross-field rules of `analysis` and `strategy`. Pure functions over a schema-checked document.

Measurement counts, failure limits, thresholds no value can meet, canary weights as replica
counts, blue-green Services and timing, and which target kinds take which strategy. The
shapes of the fields (one provider per metric, `${variables}`) are checked by `schema.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from .analysis import LATENCY_MS, MAX_MEASUREMENTS, SUCCESS_RATE, Analysis
from .durations import format_duration
from .model import resolve_analysis, resolve_strategy
from .schema import AnalysisSpec, EnvironmentSpec, ServiceSpec, StrategySpec, ThresholdSpec
from .source import PathPart
from .strategy import BlueGreen, canary_pods

Path = tuple[PathPart, ...]
Finding = tuple[Path, str]
LineOf = Callable[[Sequence[PathPart]], int]


def check_service(name: str, service: ServiceSpec, line_of: LineOf) -> Iterator[Finding]:
    """Every problem of the service's analyses and strategies."""
    for index, environment in enumerate(service.environments):
        here: Path = ("services", name, "environments", index)
        analysis = None
        if environment.analysis is not None:
            yield from _analysis(environment.analysis, (*here, "analysis"))
            analysis = resolve_analysis(environment.analysis)
        if environment.strategy is not None:
            yield from _strategy(environment, environment.strategy, analysis,
                                 (*here, "strategy"), line_of)


def _analysis(spec: AnalysisSpec, here: Path) -> Iterator[Finding]:
    interval = format_duration(spec.interval)
    if spec.duration is not None:
        written = format_duration(spec.duration)
        if spec.duration < spec.interval:
            yield (*here, "duration"), (f"duration {written} is shorter than interval {interval}:"
                                        " not one measurement fits")
            return
        count = spec.duration // spec.interval
        if count > MAX_MEASUREMENTS:
            yield (*here, "duration"), (f"duration {written} at interval {interval} makes {count}"
                                        f" measurements, more than {MAX_MEASUREMENTS}: lengthen"
                                        " the interval")
            return
    else:
        assert spec.measurements is not None
        count = spec.measurements
    if spec.failure_limit >= count:
        yield (*here, "failureLimit"), (f"failureLimit {spec.failure_limit} tolerates all {count}"
                                        " measurement(s): the analysis could never fail")
    seen: set[str] = set()
    for position, metric in enumerate(spec.metrics):
        where: Path = (*here, "metrics", position)
        if metric.name in seen:
            yield (*where, "name"), f"duplicate metric name {metric.name!r} in this analysis"
        seen.add(metric.name)
        if metric.http is not None:
            yield from _http(metric.http.value, metric.http.requests,
                             metric.http.attempt_timeout_seconds, metric.threshold, where,
                             spec.interval.total_seconds())
        if metric.job is not None and metric.job.timeout > spec.interval:
            timeout = format_duration(metric.job.timeout)
            at = (*where, "job", "timeout") if "timeout" in metric.job.model_fields_set \
                else (*where, "job")
            yield at, (f"the Job's timeout {timeout} is longer than the interval {interval}: one"
                       " measurement must fit in an interval (the timeout defaults to 5m)")


def _http(value: str, requests: int, timeout: float, threshold: ThresholdSpec | None,
          where: Path, interval: float) -> Iterator[Finding]:
    low = threshold.min if threshold is not None else None
    high = threshold.max if threshold is not None else None
    at: Path = (*where, "threshold")
    if value == SUCCESS_RATE:
        if low is not None and low > 1:
            yield (*at, "min"), (f"successRate is a share from 0 to 1: min {low:g} can never be"
                                 f" met (for {low:g} % write {low / 100:g})")
        if high is not None and high < 0:
            yield (*at, "max"), f"successRate is a share from 0 to 1: max {high:g} can never be met"
    elif value == LATENCY_MS:
        if high is not None and high <= 0:
            yield (*at, "max"), f"latencyMs is above 0: max {high:g} can never be met"
        elif high is not None and high >= timeout * 1000:
            yield (*at, "max"), (f"max {high:g} ms is not below the attempt timeout"
                                 f" ({timeout:g} s): a request that never answers counts as"
                                 f" {timeout * 1000:g} ms and would pass")
    if requests * timeout > interval:
        yield (*where, "http", "requests"), (
            f"{requests} request(s) of up to {timeout:g} s each may take longer than the"
            f" interval ({interval:g} s): one measurement must fit in an interval")


def _strategy(environment: EnvironmentSpec, spec: StrategySpec, analysis: Analysis | None,
              here: Path, line_of: LineOf) -> Iterator[Finding]:
    if environment.target.helm is not None:
        kind = "blueGreen" if spec.blue_green is not None else "canary"
        yield here, (f"a Helm target takes strategy rolling only, not {kind}: Helm owns the"
                     " chart's Deployments and Services, so the product does not patch them"
                     " (analysis still applies)")
        return
    strategy = resolve_strategy(spec, analysis is not None)
    if isinstance(strategy, BlueGreen):
        yield from _blue_green(spec, strategy, analysis, (*here, "blueGreen"))
    elif spec.canary is not None:
        yield from _canary(spec, (*here, "canary"), line_of)


def _blue_green(spec: StrategySpec, strategy: BlueGreen, analysis: Analysis | None,
                here: Path) -> Iterator[Finding]:
    written = spec.blue_green
    assert written is not None
    if strategy.preview_service == strategy.active_service:
        yield (*here, "previewService"), (f"previewService and activeService are both"
                                          f" {strategy.active_service!r}: the preview needs a"
                                          " Service of its own")
    if analysis is None:
        for field, value in (("prePromotionAnalysis", written.pre_promotion_analysis),
                             ("postPromotionAnalysis", written.post_promotion_analysis)):
            if value:
                yield (*here, field), "is true but this environment has no analysis"
        return
    if not strategy.pre_promotion_analysis and not strategy.post_promotion_analysis:
        yield here, ("the environment's analysis would never run: set prePromotionAnalysis or"
                     " postPromotionAnalysis")
    if strategy.post_promotion_analysis and strategy.scale_down_delay < analysis.length:
        delay = format_duration(strategy.scale_down_delay)
        where = (*here, "scaleDownDelay") if "scale_down_delay" in written.model_fields_set \
            else here
        yield where, (f"scaleDownDelay {delay} is shorter than the post-promotion analysis"
                      f" ({analysis.measurements} × {format_duration(analysis.interval)} ="
                      f" {format_duration(analysis.length)}): the previous version would be"
                      " scaled down before a failed analysis could switch back to it")


def _canary(spec: StrategySpec, here: Path, line_of: LineOf) -> Iterator[Finding]:
    canary = spec.canary
    assert canary is not None
    weights: list[tuple[int, Path]]
    if canary.steps is not None:
        weights = [(step.weight, (*here, "steps", index, "weight"))
                   for index, step in enumerate(canary.steps) if step.weight is not None]
        if not weights:
            yield (*here, "steps"), "needs at least one {weight} step"
    else:
        weights = [(weight, (*here, "weights", index))
                   for index, weight in enumerate(canary.weights or ())]
    replicas = canary.replicas
    previous: tuple[int, Path] | None = None
    for weight, where in weights:
        pods = canary_pods(weight, replicas)
        if previous is not None and weight <= previous[0]:
            at = line_of(previous[1])
            place = f" (line {at})" if at != line_of(where) else ""
            yield where, (f"weight {weight} is not above the weight before it, {previous[0]}"
                          f"{place}: weights must increase")
        elif pods == 0:
            yield where, (f"weight {weight} of {replicas} replicas is 0 canary pods: the canary"
                          " would get no traffic (raise the weight or replicas)")
        elif pods == replicas:
            yield where, (f"weight {weight} of {replicas} replicas is {pods} canary pods and no"
                          " stable pod (lower the weight or raise replicas)")
        elif previous is not None and pods == canary_pods(previous[0], replicas):
            yield where, (f"weight {weight} of {replicas} replicas is {pods} canary pod(s), as"
                          f" weight {previous[0]} before it: the step would change nothing"
                          " (raise replicas or drop a step)")
        previous = (weight, where)
