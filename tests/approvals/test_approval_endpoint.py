"""The approval page and its decisions over HTTP, on the real app in devhost with a real gate.

A release goes through QA (Kubernetes simulator, registry, Azurite) to the production gate;
the tests then use the links the gate signed, as people and scripts would: prefetches,
tampered, expired and foreign links, people who may not approve, forged forms, a key
rotation, a replay, and in App Service mode signed-in people by user and by group.
Every refusal is checked to have changed nothing: no event raised, no use in the book.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import pytest

from sandbox.azurite import Azurite
from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.server import KubeSimulator
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.approvals import keys
from shared.approvals.tokens import issue, new_nonce
from shared.ledger.approvals import ApprovalBook
from tests.releases.release_rig import Released, ReleaseStack
from triggers import approvals as approval_pages

ANN, BOB, CAROL = "ann@example.com", "bob@example.com", "carol@example.com"
MANAGERS = "6f1c2a9e-0000-4000-8000-release-mgrs"


@pytest.fixture
def stack(tmp_path: Path, tls_files: TlsFiles, registry: LocalRegistry, azurite: Azurite,
          kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch) -> ReleaseStack:
    return ReleaseStack(tmp_path, tls_files, registry, azurite, kube, monkeypatch)


def with_gate(stack: ReleaseStack, gate: str) -> None:
    """Rewrite the stack's policy with this production gate."""
    stack.policy(checks=[], gate=gate)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def links_at_gate(run: Released, tag: str, digest: str,
                        pushed_by: str | None = None) -> tuple[str, dict[str, str]]:
    """Start a release of `tag` and wait at production's gate; (release id, each approver's
    link as a path)."""
    release = run.start(tag, digest, pushed_by)
    status = await run.at_gate(release)
    return release, {link["approver"]: path_of(link["url"])
                     for link in status["customStatus"]["waitingFor"]["approvalLinks"]}


def token_of(path: str) -> str:
    return path.split("?token=", 1)[1].split("&")[0]


def page(release: str, environment: str, token: str) -> str:
    return f"/api/releases/{release}/approvals/{environment}?token={quote(token, safe='')}"


def principal(name: str, object_id: str, groups: tuple[str, ...] = ()) -> dict[str, str]:
    """App Service Authentication's headers for a signed-in Entra ID user."""
    claims = [{"typ": "name", "val": name}, {"typ": "preferred_username", "val": name},
              {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier",
               "val": object_id}] + [{"typ": "groups", "val": group} for group in groups]
    body = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles", "claims": claims}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(body).encode()).decode(),
            "X-MS-CLIENT-PRINCIPAL-NAME": name, "X-MS-CLIENT-PRINCIPAL-ID": object_id}


class Web:
    """HTTP to the app as a browser or a script would."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base.rstrip("/")

    async def get(self, path: str, method: str = "GET",
                  headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
        async with self.http.request(method, self.base + path, headers=headers) as response:
            return response.status, await response.text(), response.headers

    async def post_json(self, path: str, body: Any,
                        headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.http.post(self.base + path, json=body, headers=headers) as response:
            return response.status, json.loads(await response.text())

    async def post(self, path: str, data: bytes, headers: dict[str, str]) -> tuple[int, str]:
        async with self.http.post(self.base + path, data=data, headers=headers) as response:
            return response.status, await response.text()


def nothing_happened(run: Released, release: str) -> None:
    """No decision event reached the release and the book holds no use of a link."""
    status = run.status(release)
    assert status["customStatus"]["waitingFor"]["event"] == "approval:prod:1"
    assert [e for e in run.history(release) if e["EventType"] == "EventRaised"] == []
    assert ApprovalBook.beside(run.stack.ledger).uses(release, "prod") == []


def test_links_refused_for_every_reason_change_nothing_then_one_approval_counts_once(
        stack: ReleaseStack, monkeypatch: pytest.MonkeyPatch) -> None:
    with_gate(stack, f"{{approvers: {{users: [{ANN}, {BOB}]}}, deadline: 72h,"
                                  " teamsWebhookSecret: teams-webhook}")
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> None:
        release, links = await links_at_gate(run, "v1.0.0", digest, pushed_by=BOB)
        ann, bob = links[ANN], links[BOB]
        keyring = keys.app_keyring()
        expires = datetime.now(UTC) + timedelta(hours=1)

        def signed(**changes: Any) -> str:
            claims = {"release_id": release, "environment": "prod", "digest": digest,
                      "scope": "decide", "expires_at": expires, "nonce": new_nonce(),
                      "approver": ANN, **changes}
            return issue(keyring, **claims)

        async with aiohttp.ClientSession() as http:
            web = Web(http, run.host.base_url)
            # Prefetch: a plain GET and a HEAD show the page and decide nothing.
            code, html, headers = await web.get(ann)
            assert code == 200, html
            assert "Approve delivery v1.0.0 to prod?" in html and digest in html
            assert "You decide as <strong>ann@example.com</strong>" in html
            assert "Pushed by</th><td>bob@example.com" in html
            assert token_of(ann) not in html and quote(token_of(ann), safe="") not in html
            stack.assert_no_secret("the approval page", html)
            assert "approval-csrf=" in headers["Set-Cookie"]
            assert headers["Cache-Control"] == "no-store"
            code, html, _ = await web.get(ann, method="HEAD")
            assert code == 200 and html == ""
            code, html, _ = await web.get(ann + "&decision=reject")
            assert code == 200 and "Reject delivery v1.0.0 to prod?" in html

            async def refused(path: str, status: int, words: str,
                              headers: dict[str, str] | None = None) -> None:
                code, body = await web.post_json(path, {"decision": "approve"}, headers)
                assert (code, words) == (status, words) and words in body["error"], body
                if status == 403 and "may only" in words:
                    return  # the page of a reject-only link offers Reject alone
                code, html, _ = await web.get(path, headers=headers)
                assert code == status, html
                assert words.lower() in html.replace("&#39;", "'").lower(), html

            token = token_of(ann)
            body, signature = token.split(".")
            flip = {"A": "B"}.get(signature[10], "A")
            await refused(page(release, "prod", f"{body}.{signature[:10]}{flip}"
                                                f"{signature[11:]}"), 403, "not valid")
            flip = {"A": "B"}.get(body[10], "A")
            await refused(page(release, "prod", f"{body[:10]}{flip}{body[11:]}.{signature}"),
                          403, "not valid")
            await refused(page(release, "prod", ""), 403, "has no approval token")
            await refused(page(release, "prod", signed(expires_at=datetime.now(UTC)
                                                       - timedelta(minutes=1))),
                          410, "expired at")
            await refused(page(release, "prod", signed(digest="sha256:" + "e" * 64)),
                          403, "approves another image")
            await refused(page(release, "qa", token), 403, "approves another image")
            await refused(page(release, "prod", signed(scope="reject")), 403,
                          "may only reject")
            await refused(bob, 403, "bob@example.com pushed the image")
            await refused(page(release, "prod", signed(approver=CAROL)), 403,
                          "carol@example.com is not an approver of prod")
            await refused(page("delivery-0000000000000000", "prod", token), 404,
                          "there is no release")
            # A form without the page's cookie, or from another site, is forgery.
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            code, html = await web.post(ann, b"decision=approve&csrf=" + b"x" * 43, form)
            assert code == 403 and "did not come from the approval page" in html
            code, html = await web.post(ann, b"decision=approve", {
                **form, "Origin": "https://evil.example"})
            assert code == 403 and "posted from another site" in html
            code, html = await web.post(ann, b'{"decision": "approve"}',
                                        {"Content-Type": "text/plain"})
            assert code == 415
            nothing_happened(run, release)

            # Rotate the key: the link signed with the previous one still works, once.
            previous = stack.settings["APPROVAL_SIGNING_KEY"]
            monkeypatch.setenv("APPROVAL_SIGNING_KEY", "rotated-" + uuid.uuid4().hex * 2)
            monkeypatch.setenv("APPROVAL_SIGNING_KEY_PREVIOUS", previous)
            code, answer = await web.post_json(ann, {"decision": "approve",
                                                     "comment": "ship it"})
            assert code == 200, answer
            assert answer["counted"] is True and answer["outcome"] == "Approved"
            assert (answer["by"], answer["decision"], answer["releaseId"]) == (
                ANN, "approve", release)
            code, again = await web.post_json(ann, {"decision": "reject"})
            assert code == 409 and again["error"].startswith(f"already decided by {ANN} at ")
            code, html, _ = await web.get(ann)
            assert code == 409 and f"Already decided by {ANN} at" in html
            # Another approver's link now finds the gate closed.
            code, late = await web.post_json(page(release, "prod", signed(approver=BOB)),
                                             {"decision": "approve"})
            assert code == 410, late
            assert late["error"].startswith(f"this gate is closed: approved by {ANN} at ")

        done = await run.finished(release)
        assert done["output"]["outcome"] == "Completed", done
        (use,) = ApprovalBook.beside(stack.ledger).uses(release, "prod")
        assert (use.by, use.decision, use.comment, use.counted) == (ANN, "approve", "ship it",
                                                                    True)
        assert any(h.get("detail") == f"approved by {ANN}: ship it"
                   for h in done["customStatus"]["history"])

    stack.serve(scenario)


def test_app_service_sign_in_decides_by_user_and_group_never_the_pusher(
        stack: ReleaseStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPROVAL_IDENTITY", "appservice")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    with_gate(stack, f"{{approvers: {{users: [{ANN}], groups: [{MANAGERS}]}},"
                                  " requiredApprovals: 2, deadline: 72h}")
    digest = stack.push("v2.0.0")

    async def scenario(run: Released) -> None:
        release = run.start("v2.0.0", digest, pushed_by=CAROL)
        status = await run.at_gate(release)
        waiting = status["customStatus"]["waitingFor"]
        assert waiting["approvalLinks"] == []
        link = path_of(waiting["approvalPage"])
        erin = principal("erin@example.com", "00000000-0000-4000-8000-00000000e71e",
                         (MANAGERS,))
        async with aiohttp.ClientSession() as http:
            web = Web(http, run.host.base_url)
            code, answer = await web.post_json(link, {"decision": "approve"})
            assert code == 401 and "sign in" in answer["error"], answer
            code, answer = await web.post_json(link, {"decision": "approve"}, principal(
                "dave@example.com", "00000000-0000-4000-8000-0000000da7e0", ("other",)))
            assert code == 403 and "dave@example.com is not an approver of prod" in \
                answer["error"]
            code, answer = await web.post_json(link, {"decision": "approve"}, principal(
                CAROL, "00000000-0000-4000-8000-00000000ca01", (MANAGERS,)))
            assert code == 403 and "pushed the image" in answer["error"], answer
            headers = {"X-MS-CLIENT-PRINCIPAL": "not base64!"}
            code, answer = await web.post_json(link, {"decision": "approve"}, headers)
            assert code == 400 and "X-MS-CLIENT-PRINCIPAL" in answer["error"]
            # With App Service Authentication off, anyone could send Erin's headers: refused.
            monkeypatch.delenv("WEBSITE_AUTH_ENABLED")
            code, answer = await web.post_json(link, {"decision": "approve"}, erin)
            assert code == 403, answer
            assert answer["error"] == (
                "approvals are refused here: APPROVAL_IDENTITY is appservice but App Service"
                " Authentication is off (WEBSITE_AUTH_ENABLED is not true), so anyone could send"
                " the sign-in headers: turn on App Service Authentication, or set"
                " APPROVAL_IDENTITY=token")
            code, html, _ = await web.get(link, headers=erin)
            assert code == 403 and "App Service Authentication is off" in html
            assert "You decide as" not in html
            nothing_happened(run, release)
            monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")

            code, html, _ = await web.get(link, headers=erin)
            assert code == 200 and "You decide as <strong>erin@example.com</strong>" in html
            code, answer = await web.post_json(link, {"decision": "approve"}, erin)
            assert code == 200, answer
            assert (answer["counted"], answer["outcome"]) == (True, "Waiting")
            assert answer["reason"] == "1 of 2 approvals; waiting for 1 more"
            code, answer = await web.post_json(link, {"decision": "approve"}, erin)
            assert code == 409 and "already decided by erin@example.com" in answer["error"]
            # The same link serves every signed-in approver once: Ann, by name only.
            code, html, _ = await web.get(link, headers={"X-MS-CLIENT-PRINCIPAL-NAME": ANN})
            assert code == 200 and "1 of 2 required: erin@example.com" in html
            code, answer = await web.post_json(link, {"decision": "approve", "comment": "ok"},
                                               {"X-MS-CLIENT-PRINCIPAL-NAME": ANN})
            assert code == 200, answer
            assert (answer["counted"], answer["outcome"], answer["by"]) == (True, "Approved",
                                                                            ANN)
        done = await run.finished(release)
        assert done["output"]["outcome"] == "Completed", done
        uses = ApprovalBook.beside(stack.ledger).uses(release, "prod")
        assert [(u.by, u.counted) for u in uses] == [("erin@example.com", True), (ANN, True)]

    stack.serve(scenario)


def test_two_approvers_at_once_both_count_and_a_slow_answer_is_202(
        stack: ReleaseStack, monkeypatch: pytest.MonkeyPatch) -> None:
    with_gate(stack, f"{{approvers: {{users: [{ANN}, {BOB}, {CAROL}]}}, requiredApprovals: 2,"
                     " deadline: 72h}")
    digest = stack.push("v3.0.0")

    async def scenario(run: Released) -> None:
        release, links = await links_at_gate(run, "v3.0.0", digest)
        async with aiohttp.ClientSession() as http:
            web = Web(http, run.host.base_url)
            # Both raise on approval:prod:1; the release takes one, and the other is raised
            # again on the name the gate waits for next.
            answers = await asyncio.gather(
                web.post_json(links[ANN], {"decision": "approve"}),
                web.post_json(links[BOB], {"decision": "approve"}))
            assert [code for code, _ in answers] == [200, 200], answers
            assert {body["by"] for _, body in answers} == {ANN, BOB}
            assert all(body["counted"] for _, body in answers)
            assert "Approved" in {body["outcome"] for _, body in answers}
            # A decision arriving as the gate closes is told so, and a closed gate takes none.
            code, late = await web.post_json(links[CAROL], {"decision": "reject"})
            assert code == 410 and late["error"].startswith("this gate is closed: approved by")
            await run.until(release, lambda s: s["customStatus"]["step"] != "approval", step=0)
            code, late = await web.post_json(links[CAROL], {"decision": "reject"})
            assert code == 410 and late["error"].startswith("this gate is closed: approved by")
        done = await run.finished(release)
        assert done["output"]["outcome"] == "Completed", done
        assert done["output"]["reason"] is None
        uses = ApprovalBook.beside(stack.ledger).uses(release, "prod")
        assert sorted(u.by for u in uses if u.counted) == [ANN, BOB]

    stack.serve(scenario)


def test_a_decision_not_yet_taken_answers_202_and_still_counts(
        stack: ReleaseStack, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = stack.push("v4.0.0")

    async def scenario(run: Released) -> None:
        release, links = await links_at_gate(run, "v4.0.0", digest)
        assert list(links) == [ANN]
        monkeypatch.setattr(approval_pages, "ANSWER_WITHIN", 0.0)
        async with aiohttp.ClientSession() as http:
            web = Web(http, run.host.base_url)
            code, html, _ = await web.get(links[ANN])  # the registry named no pusher
            assert code == 200 and "Pushed by</th><td>unknown (the registry did not say)" in html
            code, answer = await web.post_json(links[ANN], {"decision": "reject",
                                                            "comment": "not today"})
        assert code == 202, answer
        assert (answer["outcome"], answer["counted"]) == ("Pending", False)
        assert answer["reason"] == "submitted; the release has not taken it yet"
        done = await run.finished(release)
        assert done["output"]["outcome"] == "Rejected", done
        assert done["output"]["reason"] == f"rejected by {ANN}: not today"

    stack.serve(scenario)


def test_a_superseded_release_shows_its_links_as_closed(stack: ReleaseStack) -> None:
    digest = stack.push("v5.0.0")

    async def scenario(run: Released) -> None:
        release, links = await links_at_gate(run, "v5.0.0", digest)
        assert list(links) == [ANN]
        run.raise_event(release, "superseded", {"version": "v5.0.1"})
        done = await run.finished(release)
        assert done["output"]["outcome"] == "Superseded", done
        async with aiohttp.ClientSession() as http:
            web = Web(http, run.host.base_url)
            code, html, _ = await web.get(links[ANN])
            assert code == 410 and "This approval is closed" in html
            assert "this gate is closed: Superseded (superseded by v5.0.1)" in html.replace(
                "This gate", "this gate")
            code, answer = await web.post_json(links[ANN], {"decision": "approve"})
        assert code == 410 and answer["error"] == ("this gate is closed: Superseded"
                                                   " (superseded by v5.0.1)")
        assert ApprovalBook.beside(stack.ledger).uses(release, "prod") == []

    stack.serve(scenario)


def test_the_pusher_is_refused_under_another_form_of_their_name(stack: ReleaseStack) -> None:
    """Pushed as `Release-Manager`, the link for release-manager@example.com may not decide."""
    manager = "release-manager@example.com"
    with_gate(stack, f"{{approvers: {{users: [{manager}, {ANN}]}}, deadline: 72h}}")
    digest = stack.push("v6.0.0")

    async def scenario(run: Released) -> None:
        release, links = await links_at_gate(run, "v6.0.0", digest, pushed_by="Release-Manager")
        async with aiohttp.ClientSession() as http:
            web = Web(http, run.host.base_url)
            refusal = (f"{manager} pushed the image (as Release-Manager); the person who pushed"
                       " the image may not approve it")
            code, answer = await web.post_json(links[manager], {"decision": "approve"})
            assert (code, answer["error"]) == (403, refusal)
            code, html, _ = await web.get(links[manager])
            assert code == 403 and refusal in html.replace("&#39;", "'")
            nothing_happened(run, release)
            code, html, _ = await web.get(links[ANN])  # someone else may, and sees who pushed
            assert code == 200 and "Pushed by</th><td>Release-Manager" in html
            code, answer = await web.post_json(links[ANN], {"decision": "approve"})
            assert code == 200 and answer["outcome"] == "Approved", answer
        done = await run.finished(release)
        assert done["output"]["outcome"] == "Completed", done

    stack.serve(scenario)
