"""``python -m qframe`` runs the command line."""

from qframe.cli import main

main()
