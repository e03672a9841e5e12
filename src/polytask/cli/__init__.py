"""The ``polytask`` command line (nothing imports this package)."""
