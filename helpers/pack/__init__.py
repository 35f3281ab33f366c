"""acigen-pack: an image's layers packed into an ACI."""
