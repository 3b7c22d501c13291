"""How `releasectl` prints: `rich` tables and lines for people, the API's JSON with `--json`.

Errors go to standard error on one line; with `--json` they also go to standard output as
`{"error": "…"}`. Does not call the API.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared.metrics.delivery import describe_duration, describe_rate
from shared.releases.rounds import AnalysisRound, rounds_from
from shared.releases.status import HelmDeployed, ReleaseStatus
from shared.releases.waiting import ApprovalWait, FailureWait, TurnWait, Waiting

PIPED_WIDTH = 250
STATE_STYLES = {"Completed": "green", "Healthy": "green", "Running": "blue",
                "WaitingForApproval": "cyan", "Deploying": "blue", "RolledBack": "red",
                "Failed": "bold red", "Rejected": "red", "Expired": "yellow",
                "Superseded": "magenta"}
VERDICT_STYLES = {"passed": "green", "failed": "bold red", "inconclusive": "yellow"}


class Output:
    """Where and how results are written."""

    def __init__(self, as_json: bool, out: Any = None, err: Any = None) -> None:
        self.as_json = as_json
        self.console = Console(file=out or sys.stdout, highlight=False, soft_wrap=False)
        if not self.console.is_terminal:  # piped: whole lines for grep, not 80 columns
            self.console.width = max(self.console.width, PIPED_WIDTH)
        self.errors = Console(file=err or sys.stderr, highlight=False, soft_wrap=True)

    def data(self, value: Any) -> None:
        """The API's JSON: coloured on a terminal, plain (and indented) when piped."""
        if self.console.is_terminal:
            self.console.print_json(json.dumps(value))
        else:
            self.console.file.write(json.dumps(value, indent=2) + "\n")

    def error(self, message: str) -> None:
        line = " ".join(message.split())
        if self.as_json:
            self.console.file.write(json.dumps({"error": line}) + "\n")
        self.errors.print(Text(f"releasectl: error: {line}"))

    def show(self, renderable: Any) -> None:
        """A table: as rich draws it on a terminal; piped, without the cells' trailing pad."""
        if self.console.is_terminal:
            self.console.print(renderable)
            return
        with self.console.capture() as captured:
            self.console.print(renderable)
        self.console.file.write("".join(line.rstrip() + "\n"
                                        for line in captured.get().splitlines()))

    def line(self, message: str) -> None:
        """One line as is: never folded, so a link stays whole and clickable."""
        self.console.print(Text(message), soft_wrap=True)

    # Views ---------------------------------------------------------------------------------

    def releases(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            self.line("No releases match.")
            return
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in ("RELEASE", "SERVICE", "VERSION", "STATE", "WHERE", "CREATED", "REASON"):
            table.add_column(name, no_wrap=name in ("RELEASE", "STATE", "CREATED"),
                             overflow="fold")
        for row in rows:
            where = " ".join(part for part in (row.get("environment"), _step(row)) if part)
            table.add_row(row.get("releaseId", ""), row.get("service") or "",
                          row.get("version") or "", state(row.get("state")), where,
                          when(row.get("createdAt")), row.get("reason") or "")
        self.show(table)

    def release(self, shown: Mapping[str, Any]) -> None:
        durable = shown.get("durable") or {}
        summary = Table.grid(padding=(0, 2))
        summary.add_column(style="bold")
        summary.add_column(overflow="fold")
        for label, value in (
                ("Release", shown.get("releaseId")), ("Kind", shown.get("kind")),
                ("Service", shown.get("service")), ("Version", shown.get("version")),
                ("Digest", shown.get("digest")), ("State", state(shown.get("state"))),
                ("Environment", shown.get("environment")), ("Step", shown.get("step")),
                ("Reason", shown.get("reason")), ("Created", when(shown.get("createdAt"))),
                ("Updated", when(shown.get("updatedAt"))),
                ("Durable", durable.get("runtimeStatus"))):
            if value:
                summary.add_row(label, value)
        self.show(summary)
        status = ReleaseStatus.from_dict(durable.get("customStatus"))
        waiting = status.waiting_for
        if waiting and durable.get("runtimeStatus") in ("Running", "Pending"):
            self.waiting(waiting)
        self.helm(helm_of(shown, status))
        self.analysis(rounds_from(shown.get("analysis")))
        stages = shown.get("stages") or {}
        if stages:
            table = Table(title="Environments", title_justify="left", box=None,
                          header_style="bold", pad_edge=False)
            for name in ("ENVIRONMENT", "STATE", "STARTED", "FINISHED", "DETAIL"):
                table.add_column(name, overflow="fold")
            for environment, stage in stages.items():
                table.add_row(environment, state(stage.get("state")), when(stage.get("started")),
                              when(stage.get("finished")), stage.get("detail") or "")
            self.show(table)
        timeline = shown.get("timeline") or []
        if timeline:
            table = Table(title="Timeline", title_justify="left", box=None,
                          header_style="bold", pad_edge=False)
            for name in ("WHEN", "FROM", "ENVIRONMENT", "WHAT"):
                table.add_column(name, overflow="fold", no_wrap=name == "WHEN")
            for entry in timeline:
                table.add_row(when(entry.get("at")), entry.get("source") or "",
                              entry.get("environment") or "", entry.get("what") or "")
            self.show(table)

    def helm(self, helm: Mapping[str, HelmDeployed]) -> None:
        """Per Helm environment: the chart, its version and digest, Helm's revision."""
        if not helm:
            return
        table = Table(title="Helm", title_justify="left", box=None, header_style="bold",
                      pad_edge=False)
        for name in ("ENVIRONMENT", "CHART", "VERSION", "CHART DIGEST", "REVISION"):
            table.add_column(name, overflow="fold", no_wrap=name == "CHART DIGEST")
        for environment, deployed in helm.items():
            table.add_row(environment, deployed.chart or "", deployed.version or "",
                          deployed.digest or "",
                          str(deployed.revision) if deployed.revision is not None else "")
        self.show(table)

    def analysis(self, rounds: Sequence[AnalysisRound]) -> None:
        """Each analysis round: environment, round, when, verdict, each metric's number."""
        if not rounds:
            return
        table = Table(title="Analysis", title_justify="left", box=None, header_style="bold",
                      pad_edge=False)
        for name in ("ENVIRONMENT", "ROUND", "WHEN", "VERDICT", "METRICS"):
            table.add_column(name, overflow="fold", no_wrap=name in ("ROUND", "WHEN"))
        for shown in rounds:  # Text: a provider's words are never read as rich markup
            table.add_row(Text(shown.environment), str(shown.round),
                          when(shown.at.isoformat() if shown.at else None),
                          verdict(shown.verdict), Text(shown.numbers() or shown.summary))
        self.show(table)

    def waiting(self, waiting: Waiting) -> None:
        """What a running release waits for: a gate, its turn, or a person's choice."""
        if isinstance(waiting, FailureWait):
            where = waiting.environment or "?"
            self.line(f"Failed deployment in {where} waits for a decision until "
                      f"{when(waiting.deadline) or 'no deadline known'} (then: "
                      f"{waiting.on_deadline or '?'}): {waiting.failure or ''}")
            self.line(f"  decide: releasectl resolve RELEASE_ID -e {where} --rollback|--keep "
                      "-r REASON")
        elif isinstance(waiting, TurnWait):  # a turn's wait names no environment
            self.line(f"Waiting for its turn in ? behind {waiting.behind or '?'}"
                      f" until {when(waiting.until) or 'no deadline known'}")
        else:
            self.gate(waiting)

    def resolved(self, body: Mapping[str, Any]) -> None:
        self.line(f"Passed on: {body.get('decision')} of the failed deployment of "
                  f"{body.get('releaseId')} in {body.get('environment')}, by {body.get('by')};"
                  f" follow it with: releasectl show {body.get('releaseId')}")

    def retried(self, body: Mapping[str, Any]) -> None:
        after = body.get("after") or {}
        why = f": {body['reason']}" if body.get("reason") else ""
        self.line(f"Retrying {body.get('releaseId')} (retry {body.get('retry')}, after "
                  f"{after.get('outcome') or 'Failed'}) by {body.get('by')}{why}")
        self.line(f"Follow it: releasectl show {body.get('releaseId')}")

    def gate(self, waiting: ApprovalWait) -> None:
        required = waiting.required_approvals
        self.line(f"Waiting at the {waiting.environment or '?'} gate until "
                  f"{when(waiting.deadline) or 'no deadline known'}"
                  f" ({len(waiting.approvals)}{f' of {required}' if required else ''} approvals,"
                  f" {waiting.reminders or 0} reminders)")
        if waiting.approval_page:
            self.line(f"  approval page: {waiting.approval_page}")
        for link in waiting.links:
            if link.url:
                self.line(f"  approval page for {link.approver}: {link.url}")

    def started(self, body: Mapping[str, Any]) -> None:
        release, replaces = body.get("release") or {}, body.get("replaces") or {}
        target = f"{release.get('version') or release.get('releaseId')}"
        if replaces:
            target = f"{replaces.get('version') or replaces.get('releaseId')} → {target}"
        self.line(f"Started {body.get('id')}: {body.get('kind')} of {body.get('service')} in "
                  f"{body.get('environment')} ({target}) by {body.get('by')}")
        if body.get("statusUri"):
            self.line(f"Follow it: releasectl show {body.get('id')}  ({body['statusUri']})")

    def delivery(self, body: Mapping[str, Any]) -> None:
        """The four figures: a row per service, then all services together."""
        self.line(f"Delivery to production over the last {body.get('days')} days "
                  f"({when(body.get('since'))} to {when(body.get('until'))})")
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in ("SERVICE", "PRODUCTION", "DEPLOYMENTS", "PER-DAY", "LEAD-TIME",
                     "LEAD-P90", "FAILURE-RATE", "RESTORE"):
            table.add_column(name, no_wrap=True)
        services = body.get("services") or {}
        rows = [(name, figures) for name, figures in services.items()
                if isinstance(figures, Mapping)]
        if len(rows) != 1:
            rows.append(("all", {"production": "", **(body.get("all") or {})}))
        for name, figures in rows:
            table.add_row(name, str(figures.get("production") or ""), *figure_cells(figures))
        self.show(table)

    def verdict(self, status: int, body: Mapping[str, Any]) -> None:
        if status == 202:
            self.line(f"Submitted {body.get('decision') or 'the decision'} for "
                      f"{body.get('releaseId')} in {body.get('environment')}; the release has "
                      "not taken it yet: check with releasectl show")
            return
        self.line(f"{str(body.get('decision') or '').capitalize()} by {body.get('by')} counted "
                  f"for {body.get('releaseId')} in {body.get('environment')}: "
                  f"{body.get('outcome')}" + (f" ({body['reason']})" if body.get("reason")
                                              else ""))


def helm_of(shown: Mapping[str, Any], status: ReleaseStatus) -> dict[str, HelmDeployed]:
    """The API's `helm` of a release (its custom status's, from an API without the key)."""
    helm = shown.get("helm")
    if not isinstance(helm, Mapping):
        return dict(status.helm)
    return {str(name): HelmDeployed.from_dict(entry) for name, entry in helm.items()
            if isinstance(entry, Mapping)}


def figure_cells(figures: Mapping[str, Any]) -> list[str]:
    """Deployments, per day, lead time median and p90, failure rate, restore median."""
    def part(name: str) -> Mapping[str, Any]:
        value = figures.get(name)
        return value if isinstance(value, Mapping) else {}

    frequency, lead = part("deploymentFrequency"), part("leadTime")
    failures, restore = part("changeFailureRate"), part("timeToRestore")
    rate = describe_rate(failures.get("rate"))
    if failures.get("deployments"):
        rate += f" ({failures.get('failed')} of {failures.get('deployments')})"
    restored = describe_duration(restore.get("medianSeconds"))
    if restore.get("unrestored"):
        restored += f" ({restore['unrestored']} not restored)"
    return [str(frequency.get("deployments", "")), f"{frequency.get('perDay', 0):.2f}",
            describe_duration(lead.get("medianSeconds")),
            describe_duration(lead.get("p90Seconds")), rate, restored]


def state(name: Any) -> Text:
    text = str(name or "")
    return Text(text, style=STATE_STYLES.get(text, ""))


def verdict(name: str) -> Text:
    return Text(name, style=VERDICT_STYLES.get(name, ""))


def when(value: Any) -> str:
    """An ISO time as `2026-11-22 06:00:05Z`; empty for none."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _step(row: Mapping[str, Any]) -> str:
    step = row.get("step") or ""
    return "" if step == row.get("state") else f"({step})" if step else ""
