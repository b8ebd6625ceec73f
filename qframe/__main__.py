"""``python -m qframe`` runs the command line."""

from qframe.cli import main

if __name__ == "__main__":  # not when spawn re-imports it as __mp_main__ in a child
    main()
