"""acigen-sign: a detached signature for an image."""
