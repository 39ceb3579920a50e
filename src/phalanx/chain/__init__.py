"""phalanx.chain (see architecture.md)."""
