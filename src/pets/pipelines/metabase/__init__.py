"""Metabase over TimescaleDB: provisioning through its HTTP API, and a local stand-in for tests."""
