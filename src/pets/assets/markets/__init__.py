"""Dagster definitions of the markets domain."""
