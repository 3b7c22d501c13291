"""Approvals: signed links, approver identity and Teams notifications."""
