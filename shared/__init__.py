"""The release workflow's domain: pure rules and the adapters that do I/O.

Not to be confused with the team folder outside this repository.
"""
