"""The delivery figures' page: a small bar chart per figure and a row per service.

Pure view models and chart geometry (inline SVG drawn by `delivery.html.j2`, no
JavaScript, colours as SVG attributes so the page's style policy stays as it is), built
from a `DeliveryReport`; `render_delivery` writes the page. Reads nothing.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.metrics.delivery import (
    Bucket,
    DeliveryReport,
    Figures,
    describe_duration,
    describe_rate,
)

from .render import environment

WIDTH, HEIGHT = 480.0, 110.0
HEALTHY, FAILED, LEAD, RESTORE = "#2f855a", "#c53030", "#2b6cb0", "#b7791f"
WINDOWS = (7, 30, 90, 365)


@dataclass(frozen=True)
class Bar:
    """One rectangle of a chart, with what it shows on hover."""

    x: float
    y: float
    width: float
    height: float
    fill: str
    note: str


@dataclass(frozen=True)
class Chart:
    """One figure: its headline, how it was measured, and its bars over the window."""

    key: str
    title: str
    headline: str
    detail: str
    bars: tuple[Bar, ...]
    top: str           # the value at the top of the scale
    start: str         # the window's first and last day
    end: str

    @property
    def empty(self) -> bool:
        return not self.bars


@dataclass(frozen=True)
class ServiceLine:
    """A service's four figures as the page's table shows them."""

    service: str
    production: str
    deployments: str
    lead_time: str
    change_failure_rate: str
    time_to_restore: str


@dataclass(frozen=True)
class DeliveryPage:
    """The page: the window, the charts (of all services, or the one asked for), the table."""

    report: DeliveryReport
    refresh: int
    charts: tuple[Chart, ...]
    lines: tuple[ServiceLine, ...]

    @property
    def days(self) -> int:
        return self.report.days

    @property
    def service(self) -> str | None:
        return self.report.service

    def window_link(self, days: int) -> str:
        service = f"service={self.report.service}&" if self.report.service else ""
        return f"/api/dashboard/delivery?{service}days={days}"

    @property
    def windows(self) -> tuple[int, ...]:
        return WINDOWS

    def to_dict(self) -> dict[str, Any]:
        return self.report.to_dict()


def build_delivery_page(report: DeliveryReport, *, refresh: int) -> DeliveryPage:
    """The page of `report`: charts of all its services together, a table row each."""
    figures = report.all
    lines = tuple(line(name, report.production[name], f)
                  for name, f in report.by_service.items())
    return DeliveryPage(report, refresh, charts(figures, _day(report.since), _day(report.until)),
                        lines)


def line(service: str, production: str, figures: Figures) -> ServiceLine:
    lead = describe_duration(figures.lead_time_median)
    if figures.lead_times:
        lead += f" (p90 {describe_duration(figures.lead_time_p90)})"
    restore = describe_duration(figures.restore_median)
    if figures.unrestored:
        restore += f" ({figures.unrestored} not restored yet)"
    rate = describe_rate(figures.change_failure_rate)
    if figures.deployments:
        rate += f" ({figures.failed} of {figures.deployments})"
    return ServiceLine(service, production,
                       f"{figures.deployments} ({figures.per_day:.2f} per day)", lead, rate,
                       restore)


def charts(figures: Figures, start: str, end: str) -> tuple[Chart, ...]:
    """The four charts of `figures`, labelled with the window's first and last day."""
    buckets = figures.buckets
    per = "day" if all(b.days == 1 for b in buckets) else "week"
    deployments = stacked(buckets, per)
    lead = value_bars(buckets, [_median(b.lead_times) for b in buckets], LEAD,
                      lambda b, v: f"{when(b)}: median lead time {describe_duration(v)} "
                                   f"({len(b.lead_times)} changes)")
    rates = value_bars(buckets, [b.failure_rate for b in buckets], FAILED,
                       lambda b, v: f"{when(b)}: {describe_rate(v)} failed "
                                    f"({b.failed} of {b.deployments})", top=1.0)
    restore = value_bars(buckets, [_median(b.restores) for b in buckets], RESTORE,
                         lambda b, v: f"{when(b)}: median time to restore "
                                      f"{describe_duration(v)} ({len(b.restores)} restored)")
    lead_top = max((v for b in buckets if (v := _median(b.lead_times)) is not None),
                   default=None)
    restore_top = max((v for b in buckets if (v := _median(b.restores)) is not None),
                      default=None)
    most = max((b.deployments for b in buckets), default=0)
    lead_headline = describe_duration(figures.lead_time_median)
    return (
        Chart("frequency", "Deployment frequency",
              f"{figures.deployments} to production ({figures.per_day:.2f} per day)",
              f"per {per}: healthy in green, failed or rolled back in red",
              deployments, f"{most}" if most else "", start, end),
        Chart("lead-time", "Lead time for changes",
              f"median {lead_headline}" + (f", p90 {describe_duration(figures.lead_time_p90)}"
                                           if figures.lead_times else ""),
              f"push received → healthy in production; median per {per}, "
              f"{len(figures.lead_times)} changes", lead,
              describe_duration(lead_top) if lead_top is not None else "", start, end),
        Chart("failure-rate", "Change failure rate",
              describe_rate(figures.change_failure_rate)
              + (f" ({figures.failed} of {figures.deployments})" if figures.deployments
                 else ""),
              f"production deployments that failed or were rolled back, per {per}", rates,
              "100 %", start, end),
        Chart("restore", "Time to restore",
              f"median {describe_duration(figures.restore_median)}"
              + (f", {figures.unrestored} not restored yet" if figures.unrestored else ""),
              f"failed production deployment → production healthy again; median per {per}",
              restore, describe_duration(restore_top) if restore_top is not None else "",
              start, end),
    )


def stacked(buckets: Sequence[Bucket], per: str) -> tuple[Bar, ...]:
    """Healthy deployments below, failed ones on top, scaled to the busiest bucket."""
    most = max((b.deployments for b in buckets), default=0)
    if most == 0:
        return ()
    width = WIDTH / len(buckets)
    bars = []
    for index, bucket in enumerate(buckets):
        x, base = index * width, HEIGHT
        for count, fill, what in ((bucket.healthy, HEALTHY, "healthy"),
                                  (bucket.failed, FAILED, "failed or rolled back")):
            if count:
                height = HEIGHT * count / most
                base -= height
                bars.append(Bar(round(x, 2), round(base, 2), _bar_width(width),
                                round(height, 2), fill, f"{when(bucket)}: {count} {what}"))
    return tuple(bars)


def value_bars(buckets: Sequence[Bucket], values: Sequence[float | None], fill: str,
               note: Callable[[Bucket, float], str], top: float | None = None
               ) -> tuple[Bar, ...]:
    """A bar per bucket with a value, scaled to `top` (default: the largest value)."""
    known = [v for v in values if v is not None]
    scale = top if top is not None else max(known, default=0.0)
    if not known:
        return ()
    width = WIDTH / len(buckets)
    bars = []
    for index, (bucket, value) in enumerate(zip(buckets, values, strict=True)):
        if value is None:
            continue
        height = max(1.0, HEIGHT * value / scale) if scale else 1.0
        bars.append(Bar(round(index * width, 2), round(HEIGHT - height, 2), _bar_width(width),
                        round(height, 2), fill, note(bucket, value)))
    return tuple(bars)


def when(bucket: Bucket) -> str:
    if bucket.days == 1:
        return _day(bucket.start)
    return f"{_day(bucket.start)} to {_day(bucket.start + timedelta(days=bucket.days - 1))}"


def render_delivery(page: DeliveryPage) -> str:
    return environment().get_template("delivery.html.j2").render(
        view=page, height=HEIGHT, width=WIDTH)


def _bar_width(slot: float) -> float:
    return round(slot - 1 if slot > 3 else slot, 2)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")
