"""`POST /api/releases/{id}/retry` on the real app in devhost: a release that failed for a
reason outside its image runs again under the same id once the reason is gone, and what may
not run again is refused with a 409 and one line, nothing started.

The issue's case: the approval signing key is missing, so the release ends `Failed` before
its first environment; a push of the same image would only be a duplicate of it.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from release_rig import SERVICE, Released, ReleaseStack, fake_digest, outcome

ANN = {"X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com"}


async def post(run: Released, path: str, body: Any = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as http, http.post(
            run.host.base_url + path, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None), response.headers


async def get(run: Released, path: str) -> tuple[int, Any]:
    code, body, _ = await get_with_headers(run, path)
    return code, body


async def get_with_headers(run: Released, path: str) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as http, http.get(run.host.base_url + path) as response:
        return response.status, await response.json(content_type=None), response.headers


async def links_are_never_cached(run: Released, release: str) -> None:
    """Every JSON answer that shows the gate's approval links says `no-store`."""
    for path in (f"/api/releases/{release}", "/api/dashboard?format=json",
                 f"/api/dashboard/releases/{release}?format=json", "/api/releases"):
        code, body, headers = await get_with_headers(run, path)
        assert (code, headers.get("Cache-Control")) == (200, "no-store"), (path, headers)
        if path != "/api/releases":  # the list shows status links only
            assert "/approvals/prod?token=" in str(body), (path, body)


def test_a_release_failed_by_a_missing_setting_runs_again_once_it_is_set(
        stack: ReleaseStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APPROVAL_SIGNING_KEY")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")  # the sign-in names who retries
    older, digest = stack.push("v1.0.0"), stack.push("v1.0.1")

    async def scenario(run: Released) -> None:
        first, release = run.start("v1.0.0", older), run.start("v1.0.1", digest)
        for failed in (first, release):
            done = await run.finished(failed)
            assert outcome(done) == "Failed" and "APPROVAL_SIGNING_KEY" in \
                done["output"]["reason"], done
        assert stack.writes("qa") == 0

        code, body, _ = await post(run, f"/api/releases/{SERVICE}-0000000000000000/retry")
        assert (code, body) == (404, {"error": f"no release '{SERVICE}-0000000000000000'"})
        code, body, _ = await post(run, f"/api/releases/{first}/retry")
        assert (code, body) == (409, {"error": f"{first} is superseded by {release} (v1.0.1),"
                                               f" a newer release of {SERVICE}"})
        code, body, _ = await post(run, f"/api/releases/{release}/retry", {"why": "?"})
        assert code == 400 and body["error"].startswith("unknown field 'why'")
        assert outcome(run.status(release)) == "Failed"  # nothing was started

        monkeypatch.setenv("APPROVAL_SIGNING_KEY", stack.signing_key)
        code, body, headers = await post(run, f"/api/releases/{release}/retry",
                                         {"reason": "signing key set"}, ANN)
        assert code == 202, body
        assert (body["releaseId"], body["retry"], body["by"], body["reason"]) == (
            release, 1, "ann@example.com", "signing key set")
        assert body["after"]["outcome"] == "Failed"
        assert headers["Location"] == body["statusUri"] == \
            f"{run.host.base_url}/api/releases/{release}"
        code, again, _ = await post(run, f"/api/releases/{release}/retry")
        assert code == 409 and again["error"].startswith(f"{release} is running"), again

        await run.at_gate(release)
        await links_are_never_cached(run, release)
        run.approve(release)
        done = await run.finished(release)
        assert outcome(done) == "Completed", done
        assert stack.image("prod") == stack.image_in("prod", digest)
        row = stack.ledger.get_release(release, service=SERVICE)
        assert (row.state, row.stages["prod"].state) == ("Completed", "Healthy")

        code, shown = await get(run, f"/api/releases/{release}")
        assert code == 200
        retried = [e for e in shown["timeline"] if e["what"].startswith("retry 1 by")]
        assert [e["what"] for e in retried] == [
            "retry 1 by ann@example.com: signing key set (after Failed: nothing deployed: the"
            " approval gates of this release cannot work: APPROVAL_SIGNING_KEY is not set:"
            " approval links cannot be signed (generate one with `openssl rand -base64 48`))"]
        code, body, _ = await post(run, f"/api/releases/{release}/retry")
        assert (code, body) == (409, {"error": f"{release} completed; there is nothing to"
                                               " retry"})

    stack.serve(scenario)


def test_a_release_a_person_rolled_back_is_not_run_again(stack: ReleaseStack) -> None:
    """QA leaves a crashing version in place (onFailure: none); an operator rolls it back."""
    stack.policy(checks=[], qa_extra="        rollback: {onFailure: none}\n")
    good, bad = stack.push("v1.0.0"), fake_digest("crashes-in-qa")
    stack.kube.set_image_behaviour(bad, "crash")

    async def scenario(run: Released) -> None:
        await run.completed("v1.0.0", good)
        release = run.start("v2.0.0", bad)
        assert outcome(await run.finished(release)) == "Failed"
        code, body, _ = await post(run, f"/api/releases/{release}/rollback",
                                   {"environment": "qa", "reason": "crashes"})
        assert code == 202, body
        assert outcome(await run.finished(body["id"])) == "Completed"
        code, body, _ = await post(run, f"/api/releases/{release}/retry", {"reason": "again"})
        assert code == 409, body
        assert body["error"] == (
            f"{release} was rolled back by anonymous (rollback:{SERVICE}:qa:1): crashes in qa;"
            " a release a person rolled back is not run again")
        assert stack.image("qa") == stack.image_in("qa", good)

    stack.serve(scenario)


def test_a_release_that_failed_in_production_runs_through_every_environment_again(
        stack: ReleaseStack) -> None:
    """Production's cluster secret was missing after QA and the approval: the retry starts
    the same instance id again, and its sub-orchestrations (`<id>:qa`) too."""
    stack.monkeypatch.delenv("SECRETS__PROD__KUBECONFIG")
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        await run.at_gate(release)
        run.approve(release)
        failed = await run.finished(release)
        assert outcome(failed) == "Failed" and failed["output"]["environment"] == "prod"
        assert "SECRETS__PROD__KUBECONFIG is not set" in failed["output"]["reason"]
        qa_writes = stack.writes("qa")

        stack.monkeypatch.setenv("SECRETS__PROD__KUBECONFIG", stack.settings[
            "SECRETS__QA__KUBECONFIG"])
        code, body, _ = await post(run, f"/api/releases/{release}/retry")
        assert code == 202, body
        assert (body["retry"], body["by"], body["reason"]) == (1, "anonymous", None)
        assert body["after"] == {"outcome": "Failed", "environment": "prod",
                                 "reason": failed["output"]["reason"]}
        await run.at_gate(release)
        assert run.status(f"{release}:qa")["runtimeStatus"] == "Completed"
        run.approve(release)
        done = await run.finished(release)
        assert outcome(done) == "Completed", done
        assert stack.image("prod") == stack.image_in("prod", digest)
        assert stack.writes("qa") == qa_writes  # the same image was already there
        history = done["customStatus"]["history"]
        assert history[0]["step"] == "retried"
        assert history[0]["detail"].startswith("retry 1 by anonymous (after Failed: ")
        run.assert_no_secrets_anywhere()

    stack.serve(scenario)
