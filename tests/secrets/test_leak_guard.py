"""The guard the other secrets tests rely on really catches a value in logs or exceptions."""

from __future__ import annotations

import logging

import pytest


def test_a_value_in_a_log_message_is_caught(leak_guard) -> None:
    value = leak_guard.value("value")
    logging.getLogger("azure.core.some.policy").debug("header: %s", value)
    assert len(leak_guard.leaks()) == 1
    leak_guard.records.clear()  # let this test pass


def test_a_value_in_a_logged_traceback_is_caught(leak_guard) -> None:
    value = leak_guard.value("value")
    try:
        raise RuntimeError(value)
    except RuntimeError:
        logging.getLogger("x").exception("failed")
    assert len(leak_guard.leaks()) == 1
    leak_guard.records.clear()


def test_a_value_in_an_exception_cause_is_caught(leak_guard) -> None:
    value = leak_guard.value("value")
    try:
        try:
            raise ValueError(value)
        except ValueError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as error:
        with pytest.raises(AssertionError, match="shows a secret value"):
            leak_guard.check_exception(error)
