"""Replay of single episodes through the real SDK (devhost.durable.replay), no I/O."""

from datetime import UTC, datetime, timedelta

import azure.durable_functions as df

from devhost.durable import history as h
from devhost.durable.replay import run_episode

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T = h.EventType


class Run:
    """Drives one orchestrator episode by episode, appending what the engine would."""

    def __init__(self, orchestrator, input_json=None):
        self.orchestrator = orchestrator
        self.input_json = input_json
        self.history = [h.event(T.ORCHESTRATOR_STARTED, T0),
                        h.execution_started(T0, "orch", input_json)]
        self.new_from = 0

    def episode(self, now=T0):
        result = run_episode(self.orchestrator, instance_id="inst", parent_instance_id=None,
                             input_json=self.input_json, history=self.history,
                             new_from=self.new_from, now=now)
        for task in result.new_tasks:
            if task.kind == "activity":
                self.history.append(h.event(T.TASK_SCHEDULED, now, task.task_id, Name=task.name,
                                            Input=task.input_json))
            elif task.kind == "timer":
                self.history.append(h.event(T.TIMER_CREATED, now, task.task_id,
                                            FireAt=h.iso(task.fire_at)))
            else:
                self.history.append(h.event(T.SUB_ORCHESTRATION_CREATED, now, task.task_id,
                                            Name=task.name, InstanceId=task.instance_id))
        self.history.append(h.event(T.ORCHESTRATOR_COMPLETED, now))
        return result

    def deliver(self, *events, now=T0):
        self.new_from = len(self.history)
        self.history += [h.event(T.ORCHESTRATOR_STARTED, now), *events]
        return self.episode(now)


def test_activity_chain_schedules_one_task_per_episode_and_returns_output():
    def chain(context):
        first = yield context.call_activity("hello", "a")
        second = yield context.call_activity("hello", "b")
        return [first, second, context.get_input()]

    run = Run(chain, '"in"')
    first = run.episode()
    assert [(t.task_id, t.kind, t.name, t.input_json) for t in first.new_tasks] == \
        [(0, "activity", "hello", '"a"')]
    assert not first.done
    second = run.deliver(h.task_completed(T0, 0, '"A"'))
    assert [(t.task_id, t.name) for t in second.new_tasks] == [(1, "hello")]
    last = run.deliver(h.task_completed(T0, 1, '"B"'))
    assert last.done and not last.failed
    assert last.output_json == '["A", "B", "in"]'
    assert last.new_tasks == []


def test_task_all_schedules_every_task_at_once():
    def fan(context):
        return (yield context.task_all([context.call_activity("sq", n) for n in range(3)]))

    run = Run(fan)
    first = run.episode()
    assert [t.task_id for t in first.new_tasks] == [0, 1, 2]
    partial = run.deliver(h.task_completed(T0, 2, "4"), h.task_completed(T0, 0, "0"))
    assert not partial.done and partial.new_tasks == []
    done = run.deliver(h.task_completed(T0, 1, "1"))
    assert done.output_json == "[0, 1, 4]"


def approval(context):
    timer = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    event = context.wait_for_external_event("Approval")
    winner = yield context.task_any([event, timer])
    if winner == event:
        timer.cancel()
        return event.result
    return "expired"


def test_task_any_event_first_cancels_the_timer():
    run = Run(approval)
    first = run.episode()
    assert [(t.task_id, t.kind, t.fire_at) for t in first.new_tasks] == \
        [(0, "timer", T0 + timedelta(hours=1))]
    done = run.deliver(h.event_raised(T0, "Approval", '{"by": "ann"}'))
    assert done.output_json == '{"by": "ann"}'
    assert done.cancelled_timers == [0]


def test_task_any_timer_first_expires():
    run = Run(approval)
    run.episode()
    later = T0 + timedelta(hours=1)
    done = run.deliver(h.timer_fired(later, 0, later), now=later)
    assert done.output_json == '"expired"'


def test_event_raised_before_the_wait_is_kept_for_it():
    def early(context):
        yield context.call_activity("hello", "x")
        return (yield context.wait_for_external_event("Early"))

    run = Run(early)
    run.episode()
    waiting = run.deliver(h.event_raised(T0, "Early", '"soon"'))
    assert not waiting.done
    done = run.deliver(h.task_completed(T0, 0, '"hi"'))
    assert done.output_json == '"soon"'


def test_retry_uses_hidden_timers_and_sequence_ids_like_the_real_host():
    def flaky(context):
        options = df.RetryOptions(first_retry_interval_in_milliseconds=2000,
                                  max_number_of_attempts=2)
        try:
            return (yield context.call_activity_with_retry("flaky", options, None))
        except Exception as failure:
            return f"failed: {failure}"

    run = Run(flaky)
    assert [(t.task_id, t.kind) for t in run.episode().new_tasks] == [(0, "activity")]
    retry_timer = run.deliver(h.task_failed(T0, 0, "boom"))
    assert [(t.task_id, t.kind, t.fire_at) for t in retry_timer.new_tasks] == \
        [(1, "timer", T0 + timedelta(seconds=2))]
    again = run.deliver(h.timer_fired(T0, 1, T0))
    assert [(t.task_id, t.kind, t.name) for t in again.new_tasks] == [(2, "activity", "flaky")]
    last_timer = run.deliver(h.task_failed(T0, 2, "boom again"))
    assert [(t.task_id, t.kind) for t in last_timer.new_tasks] == [(3, "timer")]
    assert not last_timer.done
    done = run.deliver(h.timer_fired(T0, 3, T0))
    assert done.done and "boom again" in done.output_json
    scheduled = [(e["EventType"], e["EventId"]) for e in run.history if e["EventId"] >= 0]
    assert scheduled == [(4, 0), (10, 1), (4, 2), (10, 3)]


def test_sub_orchestration_gets_a_deterministic_default_instance_id():
    def parent(context):
        named = yield context.call_sub_orchestrator("child", 1, "fixed-id")
        unnamed = yield context.call_sub_orchestrator("child", 2)
        return [named, unnamed]

    run = Run(parent)
    assert [(t.kind, t.instance_id) for t in run.episode().new_tasks] == \
        [("suborchestration", "fixed-id")]
    second = run.deliver(h.sub_orchestration_completed(T0, 0, '"one"'))
    assert [(t.task_id, t.instance_id) for t in second.new_tasks] == [(1, "inst:0001")]


def test_uncaught_exception_fails_with_its_message():
    def failing(context):
        yield context.call_activity("hello", "x")
        raise ValueError("orchestrator exploded")

    run = Run(failing)
    run.episode()
    done = run.deliver(h.task_completed(T0, 0, '"hi"'))
    assert done.done and done.failed
    assert done.error == "orchestrator exploded"


def test_changed_code_is_reported_as_non_determinism():
    def original(context):
        yield context.call_activity("hello", "x")
        return "done"

    def changed(context):
        yield context.call_activity("goodbye", "x")
        return "done"

    run = Run(original)
    run.episode()
    run.orchestrator = changed
    result = run.deliver(h.task_completed(T0, 0, '"hi"'))
    assert result.failed
    assert "NonDeterminismError" in result.error
    assert "'hello'" in result.error and "'goodbye'" in result.error


def test_dropping_a_scheduled_task_is_reported_as_non_determinism():
    def original(context):
        yield context.call_activity("hello", "x")
        return (yield context.wait_for_external_event("Go"))

    def shortened(context):
        return (yield context.wait_for_external_event("Go"))

    run = Run(original)
    run.episode()
    run.orchestrator = shortened
    result = run.deliver(h.event_raised(T0, "Go", "1"))
    assert result.failed and "never scheduled it" in result.error


def test_unsupported_features_fail_with_a_clear_reason():
    def http(context):
        return (yield context.call_http("GET", "http://127.0.0.1:1/"))

    result = Run(http).episode()
    assert result.failed and "call_http" in result.error


def test_continue_as_new_and_custom_status():
    def counter(context):
        value = context.get_input()
        context.set_custom_status({"value": value})
        context.continue_as_new(value + 1)
        return None
        yield  # noqa: B901 - makes this a generator, as orchestrators are

    result = Run(counter, "1").episode()
    assert result.continue_as_new and result.done
    assert result.continue_input_json == "2"
    assert result.custom_status_json == '{"value": 1}'
