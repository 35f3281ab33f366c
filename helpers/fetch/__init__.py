"""acigen-fetch: downloads into the cache, verified against pins and lock files."""
