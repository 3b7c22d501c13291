"""Fixtures for the ledger tests: a session Azurite and a ledger on fresh tables per test."""

from sandbox.azurite_fixtures import *  # noqa: F403
