"""Tests of the release workflow app (devhost's own tests live in tests/devhost/)."""
