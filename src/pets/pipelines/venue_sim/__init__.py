"""Local servers speaking the venue's protocols (Gamma REST, CLOB REST, market WebSocket) for tests/demos."""
