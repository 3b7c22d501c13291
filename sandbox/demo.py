"""`make demo`: a guided release on the local stack, each step shown as it happens (rich).

Uses the stack running from `--data-dir` when there is one, else starts a fresh stack of its
own (in `<data-dir>/demo`) and stops it at the end. Each environment is a Helm release of the
sample chart. Pushes the chart and image of `delivery` 1.0.0, which Helm installs (or
upgrades) in QA, `helm test` verifies, QA's analysis measures (its error rate, three times
from the stack's Prometheus), and which waits at the approval gate before
production; approves it through the approval page's JSON POST with the approver's personal
link from the release's status; waits for Completed and checks production runs it. Then
pushes 1.0.1 built to crash in production, approves it the same way, waits for RolledBack and
checks production runs 1.0.0 again, through a new Helm revision that `helm rollback` made
after the failed upgrade. Helm's history is read from its release Secrets in the cluster
(decoded without Helm) and printed at the end, as `helm history` shows it. Then the same on
`web`, the service on plain Deployments (demo_web.py): a canary in QA and a blue-green switch
in production, and a canary aborted by its error rate (web's first version is pushed before
delivery's, so that its canary runs meanwhile). Exit code 0 only
when every final state is the expected one; 1 otherwise (the step that failed says why); 2
when the stack cannot start. Never prints a token or an approval link.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from sandbox.azurite import AzuriteError
from sandbox.kube.server import HelmRelease, decode_helm_release
from sandbox.push import Pushed, PushError, push_version
from sandbox.registry import RegistryError
from sandbox.stack import REPO, Stack, StackError, StackFacts, running_stack, wipe
from sandbox.stack_policy import SERVICE
from sandbox.tools import ToolMissingError

GOOD, BAD = "1.0.0", "1.0.1"
STEP_SECONDS = 180.0
VISIBLE_SECONDS = 45.0  # the registry notifies at once; it retries every second
POLL_SECONDS = 0.25
FINAL = ("Completed", "Failed", "Terminated", "Canceled")


class DemoFailed(RuntimeError):
    """A step did not end as expected; the message says what was seen instead."""


class Demo:
    """The demo's steps against one running stack, reported on a rich console."""

    def __init__(self, facts: StackFacts, console: Console) -> None:
        self.facts, self.console = facts, console
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                 TextColumn("[dim]{task.fields[detail]}"),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.results: list[tuple[str, str, str, str]] = []

    # --- the story -------------------------------------------------------------------------

    def run(self) -> None:
        from sandbox.demo_web import WebStory  # it tells its story with this class's steps

        with self.progress:
            web = WebStory(self)
            web_good = web.start()
            good = self.release(GOOD, expect="Completed")
            self.check_production(good, f"production runs {SERVICE} {GOOD}")
            self.release(BAD, expect="RolledBack", crash_in="prod")
            self.check_production(good, f"production runs {SERVICE} {GOOD} again after the "
                                        "helm rollback", rolled_back_from=BAD)
            web.run(web_good)

    def release(self, version: str, expect: str, crash_in: str | None = None) -> Pushed:
        """Push `version`, take it through QA and the gate, and wait for its final state."""
        pushed = self.push(SERVICE, version, crash_in=crash_in)
        qa = f"QA: helm upgrade --install {version}, watch the rollout, helm test, error-rate " \
            "analysis"
        with self.step(qa) as detail:
            view = self.wait(pushed, waiting_at_gate, "", detail)
            evidence = (custom_status(view).get("evidence") or {}).get("qa", "")
            detail("; ".join(filter(None, (helm_revision(view, "qa"), evidence))))
        self.approve_at_gate(view, f"{SERVICE} {version}")
        what = "promote, deploy, watch, verify" if expect == "Completed" else \
            "promote, helm upgrade: the rollout crashes, helm rollback"
        with self.step(f"prod: {what}") as detail:
            view = self.wait(pushed, finished, "", detail)
            outcome = (view.get("durable") or {}).get("output") or {}
            state = view.get("state")
            revision = helm_revision(view, "prod") if state == "Completed" else ""
            detail(f"{state}: {outcome.get('reason') or 'all environments healthy'}"
                   + (f"; {revision}" if revision else ""))
            if state != expect:
                raise DemoFailed(f"release {pushed.release_id} ended {state}, expected "
                                 f"{expect}: {outcome.get('reason')}")
        self.results.append((version, pushed.release_id, str(state), str(
            outcome.get("reason") or "")))
        return pushed

    def push(self, service: str, version: str, crash_in: str | None = None,
             errors: float = 0.0, note: str = "") -> Pushed:
        """Push `service:version` (built to crash in `crash_in`, or to answer an `errors`
        share with 500) and wait until the app shows its release, not yet finished; `note`
        ends the step's line."""
        built = f" (built to crash in {crash_in})" if crash_in else \
            f" (built to answer {errors:.0%} of requests with 500)" if errors else ""
        with self.step(f"push {service} {version}{built}") as detail:
            pushed = push_version(self.facts, service, version, crash_in, errors)
            chart = f"chart {pushed.chart.version} {pushed.chart.digest[:19]}…, " \
                if pushed.chart else ""
            view = self.wait(pushed, lambda view: view is not None,
                             "the registry notifies the app", detail, VISIBLE_SECONDS,
                             hint="did the stack ignore it (a newer version in production)? "
                                  "Run `make demo` while no `make run` runs, or restart that "
                                  "with `make run FRESH=1`")
            detail(f"{chart}image {pushed.digest[:19]}…, release {pushed.release_id}"
                   + (f"; {note}" if note else ""))
            if finished(view):
                raise DemoFailed(f"this stack already released {service} {version} "
                                 f"({pushed.release_id} ended {view.get('state')}): run "
                                 "`make demo` while no `make run` runs, or restart it with "
                                 "`make run FRESH=1`")
        return pushed

    def approve_at_gate(self, view: dict[str, Any], what: str) -> None:
        """Show who the release waits for at production's gate, then approve it as them."""
        waiting = custom_status(view).get("waitingFor") or {}
        with self.step("approval gate before prod") as detail:
            links = waiting.get("approvalLinks") or []
            if not links:
                raise DemoFailed("the release waits at the gate but its status has no "
                                 "personal approval link (is APPROVAL_IDENTITY token?)")
            detail(f"waiting for {links[0]['approver']} until "
                   f"{readable_time(waiting.get('deadline'))}")
        with self.step(f"approve through the approval page as {links[0]['approver']}") \
                as detail:
            answer = self.approve(links[0]["url"], f"make demo approves {what}")
            detail(f"{answer.get('outcome')}: {answer.get('reason') or 'counted'}")

    def check_production(self, expected: Pushed, title: str,
                         rolled_back_from: str | None = None) -> None:
        """Production's Deployment runs `expected`, and Helm's newest revision is deployed
        at its version (after a rollback: made by `helm rollback` over a failed revision of
        `rolled_back_from`)."""
        with self.step(title) as detail:
            image = self.production_image()
            wanted = f"{self.facts.registry_host}/prod/{SERVICE}@{expected.digest}"
            if image != wanted:
                raise DemoFailed(f"production runs {image}, expected {wanted}")
            history = self.helm_history("prod")
            newest = history[-1] if history else None
            if newest is None or (newest.status, newest.chart_version) != (
                    "deployed", expected.version):
                raise DemoFailed(f"helm history of {SERVICE} in prod ends with "
                                 f"{_revision(newest)}, expected chart {expected.version} "
                                 "deployed")
            if rolled_back_from is not None:
                failed = history[-2] if len(history) > 1 else None
                if failed is None or (failed.status, failed.chart_version) != (
                        "failed", rolled_back_from) or "Rollback" not in newest.description:
                    raise DemoFailed(f"helm history of {SERVICE} in prod shows no rollback "
                                     f"over a failed {rolled_back_from}: "
                                     f"{', '.join(map(_revision, history[-3:]))}")
            shown = ", ".join(map(_revision, history[-3:]))
            rollback = f" ({newest.description})" if rolled_back_from else ""
            detail(f"{image}; helm history: {shown}{rollback}")

    # --- talking to the stack ----------------------------------------------------------------

    def approve(self, page_url: str, comment: str) -> dict[str, Any]:
        """POST the decision as JSON to the approval page; its verdict (200 or 202)."""
        status, body = http_json("POST", page_url, {"decision": "approve", "comment": comment})
        if status not in (200, 202) or not isinstance(body, dict):
            reason = body.get("error") if isinstance(body, dict) else body
            raise DemoFailed(f"the approval page answered {status}: {reason}")
        if status == 200 and not body.get("counted"):
            raise DemoFailed(f"the approval was not counted: {body.get('reason')}")
        return body

    def wait(self, pushed: Pushed, done: Callable[[dict[str, Any] | None], bool], label: str,
             detail: Callable[[str], None], seconds: float = STEP_SECONDS,
             hint: str = "") -> dict[str, Any]:
        """Poll the release until `done`; DemoFailed when it ends otherwise or time runs out."""
        deadline = time.monotonic() + seconds
        view: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            status, body = http_json("GET", pushed.release_url)
            view = body if status == 200 and isinstance(body, dict) else None
            if done(view):
                return view or {}
            if view is not None and finished(view):
                raise DemoFailed(f"release {pushed.release_id} ended {view.get('state')}: "
                                 f"{view.get('reason')}")
            detail(label or now_doing(view))
            time.sleep(POLL_SECONDS)
        raise DemoFailed(f"release {pushed.release_id} did not get there within "
                         f"{seconds:.0f} s; last seen: {now_doing(view)}"
                         + (f"; {hint}" if hint else ""))

    def production_image(self) -> str:
        """The image of prod's `delivery` Deployment, read from the cluster's API."""
        body = self.deployment("prod", SERVICE)
        return str(body["spec"]["template"]["spec"]["containers"][0]["image"])

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        """A Deployment as the cluster's API gives it (read with the namespace's token)."""
        token = Path(self.facts.kube_token_files[namespace]).read_text().strip()
        url = f"{self.facts.kube_url}/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
        status, body = http_json("GET", url, headers={"Authorization": f"Bearer {token}"},
                                 ca_file=self.facts.ca_file)
        if status != 200 or not isinstance(body, dict):
            raise DemoFailed(f"the cluster answered {status} for {namespace}/{name}")
        return body

    def helm_history(self, namespace: str) -> list[HelmRelease]:
        """Helm's revisions of `delivery` in `namespace`, from its release Secrets (read with
        the namespace's token, decoded without Helm), oldest first."""
        token = Path(self.facts.kube_token_files[namespace]).read_text().strip()
        url = (f"{self.facts.kube_url}/api/v1/namespaces/{namespace}/secrets"
               f"?labelSelector=owner%3Dhelm%2Cname%3D{SERVICE}")
        status, body = http_json("GET", url, headers={"Authorization": f"Bearer {token}"},
                                 ca_file=self.facts.ca_file)
        if status != 200 or not isinstance(body, dict):
            raise DemoFailed(f"the cluster answered {status} for Helm's records in {namespace}")
        return sorted((decode_helm_release(item) for item in body.get("items") or []),
                      key=lambda release: release.revision)

    # --- reporting ---------------------------------------------------------------------------

    @contextmanager
    def step(self, title: str) -> Iterator[Callable[[str], None]]:
        """Show `title` with a spinner while the block runs; print ✓ or ✗ when it ends."""
        task = self.progress.add_task(title, detail="", total=None)
        shown = {"detail": ""}

        def detail(text: str) -> None:
            shown["detail"] = text
            self.progress.update(task, detail=text)

        started = time.monotonic()
        try:
            yield detail
        except BaseException:
            self.progress.remove_task(task)
            self.console.print(f"[red]✗[/] {title}", highlight=False)
            raise
        self.progress.remove_task(task)
        seconds = time.monotonic() - started
        note = f" [dim]— {escape(shown['detail'])}[/]" if shown["detail"] else ""
        self.console.print(f"[green]✓[/] {escape(title)}{note} [dim]({seconds:.1f} s)[/]",
                           highlight=False)

    def summary(self) -> Table:
        table = Table(title="make demo: releases")
        for column in ("version", "release", "final state"):
            table.add_column(column, no_wrap=True)
        table.add_column("reason", overflow="ellipsis", no_wrap=True, max_width=60)
        for row in self.results:
            table.add_row(*row)
        return table

    def history_table(self, namespace: str = "prod") -> Table:
        """`helm history delivery -n <namespace>` (its last ten revisions), from the cluster."""
        table = Table(title=f"helm history {SERVICE} -n {namespace} (decoded from Helm's "
                            "release Secrets)")
        for column in ("revision", "status", "chart", "app version"):
            table.add_column(column, no_wrap=True)
        table.add_column("description", overflow="fold", min_width=20, max_width=70)
        for release in self.helm_history(namespace)[-10:]:
            table.add_row(str(release.revision), release.status,
                          f"{release.chart}-{release.chart_version}", release.app_version,
                          release.description)
        return table


# --- release views ---------------------------------------------------------------------------

def readable_time(iso: Any) -> str:
    """`2026-11-22 07:17 UTC` from an ISO time (as given when it is not one)."""
    try:
        return datetime.fromisoformat(str(iso)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(iso)


def custom_status(view: dict[str, Any] | None) -> dict[str, Any]:
    durable = (view or {}).get("durable") or {}
    custom = durable.get("customStatus")
    return custom if isinstance(custom, dict) else {}


def waiting_at_gate(view: dict[str, Any] | None) -> bool:
    """The orchestration waits (custom status) and the ledger says so (the page reads it)."""
    custom = custom_status(view)
    return (custom.get("step") == "approval" and bool(custom.get("waitingFor"))
            and (view or {}).get("state") == "WaitingForApproval")


def helm_revision(view: dict[str, Any] | None, environment: str) -> str:
    """`helm revision 2 (chart delivery 1.0.1)` from the release's status, or ''."""
    helm = (custom_status(view).get("helm") or {}).get(environment) or {}
    if not helm.get("revision"):
        return ""
    return f"helm revision {helm['revision']} (chart {helm['chart']} {helm['version']})"


def _revision(release: HelmRelease | None) -> str:
    """`3 deployed 1.0.0` (revision, status, chart version), or `none`."""
    if release is None:
        return "none"
    return f"{release.revision} {release.status} {release.chart_version}"


def finished(view: dict[str, Any] | None) -> bool:
    runtime = ((view or {}).get("durable") or {}).get("runtimeStatus")
    return runtime in FINAL


def now_doing(view: dict[str, Any] | None) -> str:
    if view is None:
        return "not visible yet"
    custom = custom_status(view)
    where = custom.get("environment") or view.get("environment") or ""
    return f"{where}: {custom.get('step') or view.get('step') or view.get('state')}"


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
              ca_file: str | None = None) -> tuple[int, Any]:
    """(status, JSON body or text) of one request; status 0 when nothing answers."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", "Accept": "application/json", **(headers or {})})
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    try:
        with urllib.request.urlopen(request, timeout=15, context=context) as response:
            return response.status, _decoded(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _decoded(error.read())
    except OSError as error:
        return 0, str(error)


def _decoded(raw: bytes) -> Any:
    text = raw.decode(errors="replace")
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return text


# --- the command -----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO / ".devhost",
                        help="use the stack running from here; else start a fresh one in "
                             "DATA_DIR/demo (default: .devhost)")
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    try:
        with demo_stack(args.data_dir, console) as facts:
            demo = Demo(facts, console)
            try:
                demo.run()
            except (DemoFailed, PushError) as failure:
                console.print(demo.summary())
                console.print(f"[red]make demo failed:[/] {escape(str(failure))}")
                return 1
            console.print(demo.summary())
            console.print(demo.history_table("prod"))
            console.print("[green]make demo: done.[/]")
            return 0
    except (StackError, ToolMissingError, AzuriteError, RegistryError) as error:
        console.print(f"[red]make demo: the stack cannot start:[/] {escape(str(error))}")
        return 2
    except KeyboardInterrupt:
        console.print("make demo: interrupted")
        return 130


@contextmanager
def demo_stack(data_dir: Path, console: Console) -> Iterator[StackFacts]:
    """The stack running from `data_dir`, or a fresh one of the demo's own until the end."""
    running = running_stack(data_dir)
    if running is not None:
        console.print(f"[green]✓[/] using the stack running from {running.data_dir} "
                      f"(app {running.app_url})")
        yield running
        console.print(f"The releases stay on its dashboard: {running.dashboard_url}")
        return
    own = data_dir / "demo"
    wipe(own)

    def card(line: str) -> None:
        if not line.startswith("[teams]   "):  # headlines only: links hold tokens
            console.print(line, style="dim", markup=False, highlight=False)

    with console.status(f"starting a fresh local stack in {own} …"):
        stack = Stack(own, print_card=card).start()
    try:
        assert stack.facts is not None
        console.print(f"[green]✓[/] started a fresh local stack (app {stack.facts.app_url}, "
                      f"state in {own})")
        yield stack.facts
    finally:
        with console.status("stopping the demo's stack …"):
            stack.stop()
        console.print("The demo's stack is stopped. To look around: `make run`, then "
                      "`make push SERVICE=delivery VERSION=1.0.1` and the dashboard it prints.")


if __name__ == "__main__":
    sys.exit(main())
