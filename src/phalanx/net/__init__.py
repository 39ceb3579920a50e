"""phalanx.net (see architecture.md)."""
