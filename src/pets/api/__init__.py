"""The control API (pets api serve, pets run --api-port): FastAPI over a desk state."""
