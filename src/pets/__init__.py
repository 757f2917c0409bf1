"""PETS - Polymarket Elite Trading System."""

__version__ = "0.1.0"
