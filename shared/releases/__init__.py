"""Releases: the plan an orchestration follows, built from the policy snapshot (pure)."""
