"""`make demo`'s part on `web`, the sample service on plain Deployments (see demo.py).

A good version goes through QA as a canary (1, then 2 of 4 pods, the error rate measured at
each step), the approval gate, and a blue-green switch in production: which slot answers
through the production Service `web` is asked before and after (its `/version`, through the
Service's proxy that the stack's control endpoint names). Then a version built to answer half
its requests with 500 is aborted by QA's canary analysis at its first step; the stable `web`
Deployment is shown untouched (same revision, its image, all 4 pods) and the canary at zero.
To keep the demo short, the good version is pushed first (`start`), so that its canary runs
while delivery's story goes on, and the bad one once the good one is approved, so that its
canary runs in QA while production switches; the steps are still shown in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.demo import Demo, DemoFailed, custom_status, finished, http_json, waiting_at_gate
from sandbox.push import Pushed
from sandbox.stack_policy import WEB, WEB_REPLICAS
from sandbox.stack_web import INITIAL_VERSION, initial_image

GOOD, BAD = "1.0.0", "1.0.1"
BAD_ERRORS = 0.5
ASKED = 8  # requests through the Service to see which slot answers
REVISION = "deployment.kubernetes.io/revision"


class WebStory:
    """The web part of the demo, told through the steps of `demo`."""

    def __init__(self, demo: Demo) -> None:
        self.demo, self.facts = demo, demo.facts
        first = initial_image(Path(self.facts.data_dir) / "images").digest
        self.versions = {first: INITIAL_VERSION}  # digest -> version, for what answers

    def start(self) -> Pushed:
        """Push the good version: its canary in QA starts at once."""
        pushed = self.demo.push(WEB, GOOD, note="its canary in QA runs meanwhile")
        self.versions[pushed.digest] = GOOD
        return pushed

    def run(self, good: Pushed) -> None:
        """The rest of the story, once `start` pushed `good`."""
        bad, stable_before = self.canary_then_blue_green(good)
        self.canary_aborted(bad, good, stable_before)

    def canary_then_blue_green(self, pushed: Pushed) -> tuple[Pushed, dict[str, Any]]:
        """The good version through QA's canary, the gate and production's blue-green
        switch; the bad version is pushed once the good one is approved. The bad release,
        and QA's stable Deployment as it was before it."""
        demo, version = self.demo, pushed.version
        with demo.step(f"QA: canary {WEB} {version}: 1, then 2 of "
                       f"{WEB_REPLICAS['qa']} pods, error-rate analysis at each step") as detail:
            view = demo.wait(pushed, waiting_at_gate, "", detail)
            detail(self.evidence(view, "qa"))
        with demo.step(f"prod: {WEB} before the switch") as detail:
            before = self.answering("prod", WEB)
            detail(f"{WEB} answers from {before}")
        demo.approve_at_gate(view, f"{WEB} {version}")
        # A push while it still waits at the gate would supersede it there: wait until the
        # release has taken the approval.
        demo.wait(pushed, past_gate, "", lambda _: None)
        stable_before = demo.deployment("qa", WEB)
        bad = demo.push(WEB, BAD, errors=BAD_ERRORS,
                        note="its canary in QA runs while production switches")
        with demo.step(f"prod: blue-green: the idle slot gets {version}, analysis behind "
                       f"{WEB}-preview, {WEB} switches, analysis, the old slot retires") \
                as detail:
            view = demo.wait(pushed, finished, "", detail)
            state = view.get("state")
            if state != "Completed":
                raise DemoFailed(f"release {pushed.release_id} ended {state}, expected "
                                 f"Completed: {view.get('reason')}")
            detail(self.evidence(view, "prod"))
        with demo.step(f"prod: {WEB} after the switch") as detail:
            after = self.answering("prod", WEB)
            if f"({version})" not in after:
                raise DemoFailed(f"{WEB} answers from {after}, expected {version}")
            detail(f"{WEB} answers from {after}; before: {before}")
        demo.results.append((f"{WEB} {version}", pushed.release_id, str(state), ""))
        return bad, stable_before

    def canary_aborted(self, pushed: Pushed, stable: Pushed, before: dict[str, Any]) -> None:
        """`pushed`, answering half its requests with 500, is aborted at QA's first canary
        step; the stable Deployment keeps its revision, image and pods (`before`)."""
        demo, version = self.demo, pushed.version
        with demo.step(f"QA: canary {WEB} {version} at 1 of {WEB_REPLICAS['qa']} pods, "
                       "its error rate measured") as detail:
            view = demo.wait(pushed, finished, "", detail)
            state, reason = view.get("state"), str(view.get("reason") or "")
            if state != "RolledBack":
                raise DemoFailed(f"release {pushed.release_id} ended {state}, expected "
                                 f"RolledBack: {reason}")
            detail(f"{state}: {reason}")
        with demo.step(f"QA: stable {WEB} untouched, {WEB}-canary at zero") as detail:
            after, canary = demo.deployment("qa", WEB), demo.deployment("qa", f"{WEB}-canary")
            revision = (after["metadata"].get("annotations") or {}).get(REVISION)
            if after["spec"]["template"] != before["spec"]["template"] or revision != (
                    before["metadata"].get("annotations") or {}).get(REVISION):
                raise DemoFailed(f"stable {WEB} in QA changed: revision {revision}, image "
                                 f"{image(after)}")
            pods = after["spec"]["replicas"], canary["spec"]["replicas"]
            if pods != (WEB_REPLICAS["qa"], 0):
                raise DemoFailed(f"{WEB} and {WEB}-canary in QA have {pods[0]} and {pods[1]} "
                                 f"pods, expected {WEB_REPLICAS['qa']} and 0")
            if not image(after).endswith(stable.digest):
                raise DemoFailed(f"stable {WEB} in QA runs {image(after)}, expected "
                                 f"{stable.version}")
            detail(f"{WEB}: revision {revision}, {pods[0]} pods on {stable.version} "
                   f"({stable.digest[:19]}…); {WEB}-canary: 0 pods")
        demo.results.append((f"{WEB} {version}", pushed.release_id, str(state), reason))

    def evidence(self, view: dict[str, Any], environment: str) -> str:
        """The release's evidence in `environment`, as its status gives it."""
        return str((custom_status(view).get("evidence") or {}).get(environment, ""))

    def answering(self, namespace: str, service: str) -> str:
        """Which slots answer `ASKED` requests through the Service: `web-green (1.0.0)`."""
        status, body = http_json("GET", f"{self.facts.control_url}/services/{namespace}/"
                                        f"{service}")
        if status != 200 or not isinstance(body, dict):
            raise DemoFailed(f"the stack has no proxy for {namespace}/{service}: {body}")
        slots = set()
        for _ in range(ASKED):
            status, answer = http_json("GET", f"{body['url']}/version")
            if status != 200 or not isinstance(answer, dict):
                raise DemoFailed(f"{namespace}/{service} answered {status} to /version")
            slot = str(answer["pod"]).rsplit("-", 2)[0]  # <deployment>-<rs hash>-<x>
            digest = str(answer["digest"])
            slots.add(f"slot {slot} ({self.versions.get(digest, digest[:19] + '…')})")
        return " and ".join(sorted(slots))


def past_gate(view: dict[str, Any] | None) -> bool:
    """The release has taken its approval (it promotes, deploys or has ended)."""
    return custom_status(view).get("step") not in (None, "approval")


def image(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])
