"""Releases whose production is verified by an analysis over time, end to end through
devhost on a virtual clock: measurements one interval apart (durable timers), a passing
bake time, and a rising error rate that rolls production back at its first measurement."""

from __future__ import annotations

from typing import Any

from release_rig import Released, ReleaseStack, outcome

from sandbox.policy_text import SERVICE


def analysis(url: str, measurements: int = 3, failure_limit: int = 0) -> str:
    """Production's `analysis` (8-space indent): an http metric over `url`, every 30 s."""
    return (
        "        analysis:\n"
        f"          interval: 30s\n"
        f"          measurements: {measurements}\n"
        f"          failureLimit: {failure_limit}\n"
        "          metrics:\n"
        "            - name: health\n"
        f"              http: {{url: \"{url}\", requests: 4}}\n"
        "              threshold: {min: 0.75}\n")


def history_of(status: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(h["step"], h.get("detail")) for h in status["customStatus"]["history"]]


def test_an_analysis_that_passes_its_bake_time_completes_the_release(
        stack: ReleaseStack) -> None:
    server = stack.check_server(lambda headers: (200, {"status": "ok"}))
    stack.policy(checks=[], prod_extra=analysis(server.url))
    good = stack.push("v1.0.0")

    async def scenario(released: Released) -> None:
        release = released.start("v1.0.0", good)
        await released.at_gate(release)
        released.approve(release)
        done = await released.finished(release, seconds=60)
        assert outcome(done) == "Completed", done
        assert server.calls == 3 * 4  # three measurements of four requests
        assert done["customStatus"]["evidence"]["prod"] == (
            "analysis passed (3 measurements): health: 1 (within 0.75 ≤ x): 4 of 4 requests"
            " passed (status 200 as expected)")
        timers = [e for e in released.history(f"{release}:prod")
                  if e["EventType"] == "TimerCreated"]
        assert len(timers) >= 3  # one interval before each measurement, durable

    stack.serve(scenario)


def test_a_rising_error_rate_rolls_production_back_at_its_first_measurement(
        stack: ReleaseStack) -> None:
    answers = iter([(200, {"status": "ok"})] * 2 + [(500, {"status": "down"})] * 100)
    server = stack.check_server(lambda headers: next(answers))
    stack.policy(checks=[], prod_extra=analysis(server.url))
    good, bad = stack.push("v1.0.0"), stack.push("v2.0.0")

    async def scenario(released: Released) -> None:
        server.answer = lambda headers: (200, {"status": "ok"})
        await released.completed("v1.0.0", good)
        server.answer = lambda headers: next(answers)
        release = released.start("v2.0.0", bad)
        await released.at_gate(release)
        released.approve(release)
        done = await released.finished(release, seconds=60)
        assert outcome(done) == "RolledBack", done
        assert done["output"]["reason"] == (
            "analysis failed: analysis 1/3: health: 0.5 (outside 0.75 ≤ x): 2 of 4 requests"
            " passed (status 500, expected 200)")
        assert stack.image("prod") == stack.image_in("prod", good)
        assert stack.ledger.environment_state(SERVICE, "prod").current.digest == good

    stack.serve(scenario)
