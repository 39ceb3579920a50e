"""phalanx.protocol (see architecture.md)."""
