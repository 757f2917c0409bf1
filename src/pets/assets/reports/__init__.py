"""Dagster definitions of the reports domain."""
