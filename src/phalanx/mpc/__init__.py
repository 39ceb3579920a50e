"""phalanx.mpc (see architecture.md)."""
