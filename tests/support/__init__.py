"""Shared pieces for the tests: real root filesystems, servers, tools."""
