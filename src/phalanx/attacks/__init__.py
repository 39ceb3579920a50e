"""phalanx.attacks (see architecture.md)."""
