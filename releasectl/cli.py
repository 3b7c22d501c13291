"""The `releasectl` command line: arguments, one function per command, exit codes.

Common options (`--url`, `--key`, `--json`, `--timeout`) go before or after the command.
The API's base URL: `--url`, else `RELEASE_API_URL`, else the running local stack's (the
nearest `.devhost/stack.json` in this folder or a parent, see local_stack.py), else
http://127.0.0.1:7071; the function key: `--key`, else `RELEASE_API_KEY`. Does not print a
key or an approval token in any message.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from releasectl import EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE
from releasectl.api import Api, ApiError, BadTarget, Unreachable, approval_url, release_path
from releasectl.local_stack import running_stack_url
from releasectl.output import Output
from shared.releases.status import ReleaseStatus
from shared.releases.waiting import ApprovalWait, FailureWait

URL_ENV, KEY_ENV = "RELEASE_API_URL", "RELEASE_API_KEY"
DEFAULT_URL = "http://127.0.0.1:7071"
COMMON = {"url": None, "key": None, "json": False, "timeout": 30.0}


class UsageError(Exception):
    """Arguments that make no sense together; exit 2."""


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so errors print the same way everywhere."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def parser() -> Parser:
    common = Parser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS,
                        help=f"the app's base URL (default: ${URL_ENV}, else the running "
                             f"local stack's, else {DEFAULT_URL})")
    common.add_argument("--key", default=argparse.SUPPRESS,
                        help=f"function key sent as x-functions-key (default: ${KEY_ENV})")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the API's JSON instead of tables")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS,
                        help="seconds to wait for an answer (default: 30)")

    main = Parser(prog="releasectl", parents=[common],
                  description="Operate releases through the release workflow's HTTP API.",
                  epilog=f"Which API: --url wins, then ${URL_ENV}, then the stack `make run` "
                         "runs (the nearest .devhost/stack.json in this folder or a parent, "
                         f"while that stack runs), then {DEFAULT_URL}. Exit codes: 0 done, 1 "
                         "refused or failed by the API, 2 usage error, 3 the API cannot be "
                         "reached.")
    commands = main.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    listing = commands.add_parser("list", parents=[common], help="releases, newest first")
    listing.add_argument("--service", help="only this service")
    listing.add_argument("--state", help="only these states (comma-separated), e.g. "
                                         "WaitingForApproval")
    listing.add_argument("--limit", type=int, help="at most this many (1-1000)")
    listing.set_defaults(run=run_list)

    show = commands.add_parser("show", parents=[common],
                               help="one release: stages, gate, timeline")
    show.add_argument("release_id", metavar="RELEASE_ID")
    show.set_defaults(run=run_show)

    for decision in ("approve", "reject"):
        sub = commands.add_parser(decision, parents=[common],
                                  help=f"{decision} at a gate through its approval page")
        sub.add_argument("target", metavar="URL_OR_RELEASE", nargs="?",
                         help="the approval link, or a release id (then --token)")
        sub.add_argument("--link", help="the approval link (instead of URL_OR_RELEASE)")
        sub.add_argument("--token", help="the approval token, with a release id")
        sub.add_argument("--environment", help="the gate's environment, with a release id "
                                               "(default: where it waits)")
        sub.add_argument("--comment", help="why, recorded with the decision")
        sub.set_defaults(run=run_decide, decision=decision)

    for kind, what in (("rollback", "roll an environment back from this release to the "
                                    "previous good one"),
                       ("redeploy", "deploy this past release there again")):
        sub = commands.add_parser(kind, parents=[common], help=what)
        sub.add_argument("release_id", metavar="RELEASE_ID")
        sub.add_argument("--environment", "-e", required=True)
        sub.add_argument("--reason", "-r", required=True, help="recorded with the operation")
        sub.set_defaults(run=run_operation, kind=kind)

    resolve = commands.add_parser(
        "resolve", parents=[common],
        help="roll back or keep a failed deployment that waits for a person")
    resolve.add_argument("release_id", metavar="RELEASE_ID")
    resolve.add_argument("--environment", "-e", required=True)
    choice = resolve.add_mutually_exclusive_group(required=True)
    choice.add_argument("--rollback", dest="decision", action="store_const", const="rollback",
                        help="restore what ran before, now")
    choice.add_argument("--keep", dest="decision", action="store_const", const="keep",
                        help="leave the failed version running (the release ends Failed)")
    resolve.add_argument("--reason", "-r", required=True, help="recorded with the decision")
    resolve.set_defaults(run=run_resolve)

    retry = commands.add_parser(
        "retry", parents=[common],
        help="run a Failed release again from its first environment (same release id)")
    retry.add_argument("release_id", metavar="RELEASE_ID")
    retry.add_argument("--reason", "-r", help="why, recorded in its timeline")
    retry.set_defaults(run=run_retry)

    stats = commands.add_parser(
        "stats", parents=[common],
        help="delivery figures (DORA) of production, per service and for all")
    stats.add_argument("--service", help="only this service")
    stats.add_argument("--days", type=int, help="the last N days (1-365, default: 30)")
    stats.set_defaults(run=run_stats)
    return main


def main(argv: Sequence[str] | None = None, *, out: Any = None, err: Any = None,
         environ: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Run one command; the exit code. `cwd`: where to look for a local stack (default: .)."""
    environ = dict(os.environ if environ is None else environ)
    as_json = "--json" in (sys.argv[1:] if argv is None else argv)
    output = Output(as_json, out, err)
    try:
        args = parser().parse_args(argv)
        options = {**COMMON, **{name: getattr(args, name) for name in COMMON
                                if hasattr(args, name)}}
        output.as_json = options["json"]
        api = Api(options["url"] or environ.get(URL_ENV)
                  or running_stack_url(cwd or Path.cwd()) or DEFAULT_URL,
                  key=options["key"] or environ.get(KEY_ENV) or None,
                  timeout=options["timeout"])
        code: int = args.run(args, api, output)
        return code
    except UsageError as error:
        output.error(str(error))
        return EXIT_USAGE
    except BadTarget as error:
        output.error(str(error))
        return EXIT_USAGE
    except ApiError as error:
        output.error(error.reason)
        return EXIT_REFUSED
    except Unreachable as error:
        output.error(str(error))
        return EXIT_UNREACHABLE


# Commands --------------------------------------------------------------------------------

def run_list(args: argparse.Namespace, api: Api, output: Output) -> int:
    rows = api.releases(args.service, args.state, args.limit)
    output.data(rows) if output.as_json else output.releases(rows)
    return EXIT_OK


def run_show(args: argparse.Namespace, api: Api, output: Output) -> int:
    shown = api.release(args.release_id)
    output.data(shown) if output.as_json else output.release(shown)
    return EXIT_OK


def run_operation(args: argparse.Namespace, api: Api, output: Output) -> int:
    body = api.operation(args.kind, args.release_id, args.environment, args.reason)
    output.data(body) if output.as_json else output.started(body)
    return EXIT_OK


def run_resolve(args: argparse.Namespace, api: Api, output: Output) -> int:
    body = api.resolve(args.release_id, args.environment, args.decision, args.reason)
    output.data(body) if output.as_json else output.resolved(body)
    return EXIT_OK


def run_retry(args: argparse.Namespace, api: Api, output: Output) -> int:
    body = {"reason": args.reason} if args.reason is not None else None
    answer = api.call("POST", f"{api.base}{release_path(args.release_id)}/retry", json=body)
    output.data(answer) if output.as_json else output.retried(answer)
    return EXIT_OK


def run_stats(args: argparse.Namespace, api: Api, output: Output) -> int:
    body = api.delivery(args.service, args.days)
    output.data(body) if output.as_json else output.delivery(body)
    return EXIT_OK


def run_decide(args: argparse.Namespace, api: Api, output: Output) -> int:
    link = decision_link(args, api)
    status, body = api.decide(link, args.decision, args.comment)
    body = body if isinstance(body, dict) else {}
    if status == 409 or body.get("counted") is False and status != 202:
        if output.as_json:
            output.data(body)
        output.errors.print(f"releasectl: error: {_refusal(body)}", markup=False)
        return EXIT_REFUSED
    output.data(body) if output.as_json else output.verdict(status, body)
    return EXIT_OK


def decision_link(args: argparse.Namespace, api: Api) -> str:
    """The approval page to post to: a link as given, or built from a release id and token."""
    target: str | None = args.link or args.target
    if not target:
        raise UsageError("give the approval link (URL_OR_RELEASE or --link), or a release id "
                         "with --token")
    if args.link and args.target:
        raise UsageError("give the approval link either as URL_OR_RELEASE or as --link, not "
                         "both")
    if target.startswith(("http://", "https://")):
        if args.token or args.environment:
            raise UsageError("an approval link already names the release, the gate and the "
                             "token: leave out --token and --environment")
        return target
    if not args.token:
        raise UsageError(f"{target!r} is a release id: give its approval --token too (or "
                         "the whole approval link)")
    environment = args.environment or waiting_environment(api, target)
    return approval_url(api.base, target, environment, args.token)


def waiting_environment(api: Api, release_id: str) -> str:
    """Where the release waits at a gate now; ApiError(409) when it waits nowhere."""
    shown = api.release(release_id)
    status = ReleaseStatus.from_dict((shown.get("durable") or {}).get("customStatus"))
    waiting = status.waiting_for
    # A paused failed deployment names its environment too: the server then says why not.
    if isinstance(waiting, ApprovalWait | FailureWait) and waiting.environment:
        return waiting.environment
    if shown.get("state") == "WaitingForApproval" and shown.get("environment"):
        return str(shown["environment"])
    raise ApiError(409, f"{release_id} is not waiting at a gate (state "
                        f"{shown.get('state') or 'unknown'}); nothing to decide")


def _refusal(body: dict[str, Any]) -> str:
    reason = body.get("error") or body.get("reason") or "the decision was not counted"
    return " ".join(str(reason).split())


