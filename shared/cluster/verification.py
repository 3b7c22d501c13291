"""HTTP verification checks with a deadline and a verdict that carries its evidence.

A check names a URL, the status it expects and optionally a body text or a JSON
field value; it is retried until it passes or its time is up. Header values
(tokens) are passed in already resolved from secrets and are redacted from any
evidence. `evaluate` is the pure rule; `run_check` does the requests; `run_checks` turns the
verdicts into `Evidence`, and `check_results`/`evidence_from_results` keep the plain-JSON
contract of the `verify_release` activity (`{"passed", "verdicts"}`) that histories hold.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlparse

import requests

from shared.deploy.evidence import Evidence, Measurement
from shared.deploy.evidence import Verdict as Concluded
from shared.secrets.sources import for_spec, parse_spec

from .errors import InvalidTarget

EXCERPT_CHARS = 200
HTTP = "http"  # the kind of evidence HTTP checks give
_MISSING = object()


@dataclass(frozen=True)
class HttpCheck:
    """One check; `headers` maps a header name to the *secret name* that holds its value."""

    name: str
    url: str
    expect_status: int = 200
    body_contains: str | None = None
    json_field: str | None = None
    json_equals: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    attempt_timeout: float = 5.0
    interval: float = 2.0
    within: float = 60.0

    @classmethod
    def from_dict(cls, data: Any) -> HttpCheck:
        if not isinstance(data, dict):
            raise InvalidTarget("a check must be a JSON object")
        url = data.get("url")
        if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https"):
            raise InvalidTarget(f"check {data.get('name')!r}: url must be http(s)://…")
        headers = data.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in
                                                     headers.values()):
            raise InvalidTarget(f"check {data.get('name')!r}: headers map names to secret"
                                " names")
        try:
            return cls(name=str(data.get("name") or url), url=url,
                       expect_status=int(data.get("expectStatus", 200)),
                       body_contains=data.get("bodyContains"),
                       json_field=data.get("jsonField"), json_equals=data.get("jsonEquals"),
                       headers=dict(headers),
                       attempt_timeout=float(data.get("attemptTimeoutSeconds", 5)),
                       interval=float(data.get("intervalSeconds", 2)),
                       within=float(data.get("withinSeconds", 60)))
        except (TypeError, ValueError) as bad:
            raise InvalidTarget(f"check {data.get('name')!r}: {bad}") from None


@dataclass
class Attempt:
    """One request of a check: what came back and how long it took."""

    ok: bool
    reason: str
    status: int | None = None
    latency_ms: float = 0.0
    excerpt: str = ""


@dataclass
class Verdict:
    """A check's outcome with the attempts that led to it."""

    check: str
    passed: bool
    reason: str
    attempts: list[Attempt] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "passed": self.passed, "reason": self.reason,
                "attempts": [asdict(a) for a in self.attempts]}


def evaluate(check: HttpCheck, status: int, body: str) -> tuple[bool, str]:
    """Does this response satisfy the check? The reason says why or why not."""
    if status != check.expect_status:
        return False, f"status {status}, expected {check.expect_status}"
    if check.body_contains is not None and check.body_contains not in body:
        return False, f"body does not contain {check.body_contains!r}"
    if check.json_field is not None:
        try:
            value: Any = json.loads(body)
        except ValueError:
            return False, "body is not JSON"
        for key in check.json_field.split("."):
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        if value is _MISSING:
            return False, f"JSON field {check.json_field!r} is missing"
        if check.json_equals is not None and value != check.json_equals:
            return False, f"JSON field {check.json_field!r} is {value!r}, expected" \
                          f" {check.json_equals!r}"
    return True, f"status {status} as expected"


def run_check(check: HttpCheck, header_values: dict[str, str], *,
              session: requests.Session | None = None,
              clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> Verdict:
    """Try the check until it passes or `within` seconds have passed (never longer)."""
    session = session or requests.Session()
    deadline = clock() + check.within
    verdict = Verdict(check.name, False, "not attempted")
    secrets = [value for value in header_values.values() if value]
    while True:
        attempt = _attempt(check, header_values, session, clock,
                           min(check.attempt_timeout, max(deadline - clock(), 0.1)), secrets)
        verdict.attempts.append(attempt)
        if attempt.ok:
            verdict.passed, verdict.reason = True, attempt.reason
            return verdict
        remaining = deadline - clock()
        if remaining <= 0:
            verdict.reason = f"{attempt.reason} (gave up after {len(verdict.attempts)}" \
                             f" attempts in {check.within:g} s)"
            return verdict
        sleep(min(check.interval, remaining))


def run_checks(checks: Sequence[Any], secrets: object) -> Evidence:
    """Run every check; header secrets are resolved from the `secrets` spec here and nowhere
    else (InvalidSecretSpec when unusable)."""
    parsed = [HttpCheck.from_dict(check) for check in checks]
    source = for_spec(parse_spec(secrets))
    return evidence_of([run_check(check, {header: source.get(name)
                                          for header, name in check.headers.items()})
                        for check in parsed])


def evidence_of(verdicts: Sequence[Verdict]) -> Evidence:
    """The checks' verdicts as evidence: one measurement per check, its attempts as details."""
    return Evidence.of(HTTP, tuple(
        Measurement(v.check, Concluded.PASSED if v.passed else Concluded.FAILED, v.reason,
                    details={"attempts": [asdict(a) for a in v.attempts]})
        for v in verdicts))


def check_results(evidence: Evidence) -> dict[str, Any]:
    """HTTP evidence as `verify_release` has always answered: `{"passed", "verdicts"}`."""
    return {"passed": evidence.passed,
            "verdicts": [{"check": m.name, "passed": m.passed, "reason": m.summary,
                          "attempts": list(m.details.get("attempts") or [])}
                         for m in evidence.measurements]}


def evidence_from_results(results: Mapping[str, Any]) -> Evidence:
    """`verify_release`'s answer (as recorded in a history) read back as evidence."""
    return Evidence.of(HTTP, tuple(
        Measurement(str(v["check"]), Concluded.PASSED if v["passed"] else Concluded.FAILED,
                    str(v["reason"]), details={"attempts": list(v.get("attempts") or [])})
        for v in results["verdicts"]))


def evidence_from_answer(answer: Mapping[str, Any]) -> Evidence:
    """`verify_release`'s answer as evidence: `Evidence.to_dict` when the request named its
    target (a Helm target), else the HTTP results every earlier history holds."""
    return Evidence.from_dict(answer) if "verdict" in answer else evidence_from_results(answer)


def _attempt(check: HttpCheck, headers: dict[str, str], session: requests.Session,
             clock: Callable[[], float], timeout: float, secrets: list[str]) -> Attempt:
    started = clock()
    try:
        response = session.get(check.url, headers=headers, timeout=timeout,
                               allow_redirects=False)
    except requests.RequestException as failed:
        return Attempt(False, f"request failed: {type(failed).__name__}",
                       latency_ms=(clock() - started) * 1000)
    latency = (clock() - started) * 1000
    body = response.text
    ok, reason = evaluate(check, response.status_code, body)
    # The reason can quote the body (a JSON field's value), and a body can echo a header.
    return Attempt(ok, _redact(reason, secrets), response.status_code, round(latency, 1),
                   _redact(body, secrets)[:EXCERPT_CHARS])


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
