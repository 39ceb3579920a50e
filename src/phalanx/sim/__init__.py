"""phalanx.sim (see architecture.md)."""
