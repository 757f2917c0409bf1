"""Metrics, logging and alert senders: the operator-facing edges (docs/operations.md)."""
