"""Releases: the plan an orchestration follows (pure), the admission of operations and the
release view."""
