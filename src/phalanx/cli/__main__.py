"""``python -m phalanx.cli``."""

from phalanx.cli import main

main()
