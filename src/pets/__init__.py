"""PETS - Polymarket Elite Trading System."""

from pets import native

__version__ = "0.1.0"

native.install()  # the compiled hot path, when it was built from these very sources
