"""Phalanx: serverless collaborative learning that trusts no single party."""

__version__ = "0.1.0"
