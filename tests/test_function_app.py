"""The Function App's wiring, the HTTP starter and the smoke orchestration, without a host."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Generator
from pathlib import Path

import azure.functions as func
import pytest

import function_app
from activities.hello import say_hello
from orchestrations import HTTP_STARTABLE
from orchestrations.hello_sequence import DEFAULT_NAMES, hello_sequence, names_from_input
from triggers.orchestrators import parse_json_body, start_orchestration


def functions_by_name() -> dict[str, func.Function]:
    """The app's functions by name, as the worker indexes them.

    `get_functions` remembers names between calls and refuses a second call as
    duplicates, so reset that memory around ours (the worker calls it once).
    """
    app = function_app.app
    app.functions_bindings = None
    try:
        return {f.get_function_name(): f for f in app.get_functions()}
    finally:
        app.functions_bindings = None


def trigger_type(function: func.Function) -> str:
    return function.get_trigger().get_binding_name()


class TestRegistration:
    def test_every_function_is_registered_once(self) -> None:
        assert sorted(functions_by_name()) == [
            "approval_decision",
            "approval_page",
            "await_rollout",
            "check_approval",
            "check_approval_settings",
            "claim_stage",
            "dashboard",
            "dashboard_pipeline", "dashboard_release",
            "delivery_metrics",
            "delivery_page",
            "deploy_environment",
            "deploy_image",
            "deploy_slot",
            "health",
            "hello_sequence",
            "list_releases",
            "mark_release_stage",
            "measure_analysis",
            "notify_gate",
            "promote_image",
            "reconcile_registries",
            "record_deployment",
            "record_release",
            "redeploy_environment",
            "registry_event_grid",
            "registry_events",
            "release",
            "request_approval",
            "resolve_chart",
            "resolve_failure",
            "resolve_image",
            "retire_deployment",
            "retry_release",
            "rollback_deployment",
            "rollback_environment",
            "say_hello",
            "shift_canary",
            "show_release",
            "snapshot_deployment",
            "start_orchestration",
            "start_redeploy",
            "start_rollback",
            "switch_service",
            "verify_release",
        ]

    def test_routes(self) -> None:
        functions = functions_by_name()
        assert functions["health"].get_trigger().route == "health"
        assert functions["start_orchestration"].get_trigger().route == "orchestrators/{name}"
        assert functions["resolve_failure"].get_trigger().route == "releases/{releaseId}/resolve"

    def test_record_release_has_the_durable_client_that_wakes_turn_waiters(self) -> None:
        function = functions_by_name()["record_release"]
        assert trigger_type(function) == "activityTrigger"
        assert {(b.get_binding_name(), b.name) for b in function.get_bindings()} == {
            ("activityTrigger", "record"), ("durableClient", "client")}

    def test_http_startable_names_are_registered_orchestrators(self) -> None:
        orchestrators = {
            name
            for name, f in functions_by_name().items()
            if trigger_type(f) == "orchestrationTrigger"
        }
        assert HTTP_STARTABLE <= orchestrators


class FakeClient:
    """Records start_new calls; builds the check-status response like the SDK does."""

    def __init__(self) -> None:
        self.started: list[tuple[str, object]] = []

    async def start_new(self, name: str, client_input: object = None) -> str:
        self.started.append((name, client_input))
        return "instance-1"

    def create_check_status_response(
        self, request: func.HttpRequest, instance_id: str
    ) -> func.HttpResponse:
        return func.HttpResponse(json.dumps({"id": instance_id}), status_code=202)


def post(name: str, body: bytes) -> tuple[func.HttpResponse, FakeClient]:
    request = func.HttpRequest(
        "POST",
        f"http://localhost/api/orchestrators/{name}",
        body=body,
        route_params={"name": name},
    )
    client = FakeClient()
    starter = start_orchestration.build().get_user_function().client_function
    return asyncio.run(starter(request, client)), client


class TestStarter:
    def test_starts_with_json_body_as_input(self) -> None:
        response, client = post("hello_sequence", b'["Oslo", "Lima"]')
        assert response.status_code == 202
        assert json.loads(response.get_body()) == {"id": "instance-1"}
        assert client.started == [("hello_sequence", ["Oslo", "Lima"])]

    def test_empty_body_means_no_input(self) -> None:
        response, client = post("hello_sequence", b"")
        assert response.status_code == 202
        assert client.started == [("hello_sequence", None)]

    @pytest.mark.parametrize("name", ["nope", "say_hello", "health", ""])
    def test_unknown_or_not_startable_name_is_404(self, name: str) -> None:
        response, client = post(name, b"{}")
        assert response.status_code == 404
        error = json.loads(response.get_body())["error"]
        assert repr(name) in error and "\n" not in error
        assert client.started == []

    @pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"'single'"])
    def test_non_json_body_is_400(self, body: bytes) -> None:
        response, client = post("hello_sequence", body)
        assert response.status_code == 400
        error = json.loads(response.get_body())["error"]
        assert error.startswith("request body is not") and "\n" not in error
        assert client.started == []

    def test_parse_json_body(self) -> None:
        assert parse_json_body(b'  {"a": 1} ') == {"a": 1}
        assert parse_json_body(b"null") is None
        assert parse_json_body(b"  \n") is None


class FakeContext:
    """Just enough of DurableOrchestrationContext for a generator-level test."""

    def __init__(self, value: object) -> None:
        self._input = value
        self.calls: list[tuple[str, object]] = []

    def get_input(self) -> object:
        return self._input

    def call_activity(self, name: str, value: object) -> tuple[str, object]:
        self.calls.append((name, value))
        return (name, value)


def run_orchestrator(value: object) -> tuple[object, FakeContext]:
    """Drive the orchestrator generator, answering each activity with the real activity."""
    context = FakeContext(value)
    generator_function = hello_sequence.build().get_user_function().orchestrator_function
    generator: Generator = generator_function(context)
    result = None
    try:
        task = next(generator)
        while True:
            _, argument = task
            task = generator.send(say_hello.build().get_user_function()(argument))
    except StopIteration as stop:
        result = stop.value
    return result, context


class TestHelloSequence:
    def test_default_three_greetings_in_order(self) -> None:
        result, context = run_orchestrator(None)
        assert [c[1] for c in context.calls] == list(DEFAULT_NAMES)
        assert all(c[0] == "say_hello" for c in context.calls)
        assert result == [f"Hello {n}!" for n in DEFAULT_NAMES]

    def test_names_from_input(self) -> None:
        result, _ = run_orchestrator(["Oslo"])
        assert result == ["Hello Oslo!"]

    @pytest.mark.parametrize("value", [[], "Oslo", [1, 2], {"names": ["a"]}])
    def test_bad_input_is_refused(self, value: object) -> None:
        with pytest.raises(ValueError, match="non-empty list of names"):
            names_from_input(value)


def test_a_worker_loads_helms_sdk_only_for_a_helm_target() -> None:
    """Helm's Go runtime (about 75 MB, a few threads) stays out of a worker that releases
    no Helm target: importing the app does not load it; opening a Helm target does."""
    import subprocess
    import sys

    script = (
        "import sys, function_app\n"
        "print('helm_python' in sys.modules)\n"
        "from shared.cluster.targets import KINDS\n"
        "from shared.cluster.requests import ClusterRequest\n"
        "request = ClusterRequest.from_dict({'target': {'kind': 'helm', 'cluster': 'c'},"
        " 'connection': {'name': 'c', 'kubeconfigSecret': 'k'},"
        " 'secrets': {'local': {'environment': 'qa'}}})\n"
        "try:\n    KINDS.open(request)\nexcept Exception:\n    pass\n"
        "print('helm_python' in sys.modules)\n")
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=repo, timeout=60, check=True)
    assert done.stdout.split() == ["False", "True"]
