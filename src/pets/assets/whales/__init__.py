"""Dagster definitions of the whales domain."""
