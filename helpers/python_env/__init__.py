"""acigen-python-env: a host Python, its standard library and pip, into a root."""
