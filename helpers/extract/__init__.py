"""acigen-extract: the extract step; a root pruned to what its programs need."""
