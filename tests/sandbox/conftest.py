"""The sandbox's own tests use its shared fixtures (a nested conftest cannot use pytest_plugins)."""

from sandbox.pytest_fixtures import *  # noqa: F403
