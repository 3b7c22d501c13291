"""Thin activity functions: each calls one adapter and returns plain JSON."""
