"""phalanx.ml (see architecture.md)."""
