"""The command line, one module per command; bot/__main__.py holds the argument table."""
