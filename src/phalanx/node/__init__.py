"""phalanx.node (see architecture.md)."""
