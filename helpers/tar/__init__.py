"""Tar archives: reading, writing, decompressing, applying to a root, chunked compression."""
