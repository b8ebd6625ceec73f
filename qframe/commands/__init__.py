"""Sub-commands of the ``qframe`` command line that live in modules of their own."""
