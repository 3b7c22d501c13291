"""The invoker: activities (JSON in and out, aliases, concurrency) and orchestrator handles."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from devhost.app_loader import load_app
from devhost.invoker import FunctionNotFound, Invoker


def make_invoker(apps: Path, max_activities: int = 10) -> Invoker:
    return Invoker(load_app(apps / "activity_app"), app_dir=apps / "activity_app",
                   max_activities=max_activities)


def test_activity_json_in_and_out_sync_and_async(apps: Path) -> None:
    invoker = make_invoker(apps)

    async def scenario() -> tuple[str, str, str]:
        priced = await invoker.run_activity("price_order", json.dumps({"sku": "A1", "qty": 3}))
        shout = await invoker.run_activity("shout", json.dumps("hi"))
        by_python_name = await invoker.run_activity("make_loud", '"alias"')
        return priced, shout, by_python_name

    try:
        priced, shout, by_python_name = asyncio.run(scenario())
    finally:
        invoker.close()
    assert json.loads(priced) == {"sku": "A1", "total": 7.5}
    assert shout == '"HI!"'
    assert by_python_name == '"ALIAS!"'


def test_unknown_activity_and_failing_activity(apps: Path) -> None:
    invoker = make_invoker(apps)
    try:
        with pytest.raises(FunctionNotFound, match="activity 'nope' is not defined.*price_order"):
            asyncio.run(invoker.run_activity("nope", None))
        with pytest.raises(ValueError, match="activity exploded"):
            asyncio.run(invoker.run_activity("explode", None))
    finally:
        invoker.close()


def test_activities_are_bounded_by_max_concurrency(apps: Path) -> None:
    invoker = make_invoker(apps, max_activities=2)

    async def scenario() -> list[str]:
        return await asyncio.gather(*(invoker.run_activity("hold_slot", "0.1")
                                      for _ in range(5)))

    started = time.monotonic()
    try:
        results = asyncio.run(scenario())
    finally:
        invoker.close()
    assert max(json.loads(r) for r in results) == 2
    assert time.monotonic() - started >= 0.3  # 5 tasks, 2 at a time, 0.1 s each


def test_orchestrators_by_declared_and_python_name(apps: Path) -> None:
    invoker = make_invoker(apps)
    invoker.close()
    assert set(invoker.orchestrators) == {"process_order", "order_workflow"}
    handle = invoker.orchestrators["process_order"]
    assert handle is invoker.orchestrators["order_workflow"]
    assert handle.orchestrator_function.__name__ == "order_workflow"
    assert {"price_order", "shout", "make_loud", "hold_slot", "explode"} <= set(invoker.activities)
