"""acigen-extract-deps: print what programs inside a root need at run time."""
