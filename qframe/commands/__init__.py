"""Sub-commands of the ``qframe`` command line, one module each, added to ``qframe.cli.cli``."""
