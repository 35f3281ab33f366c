"""What every helper shares: its main and exit, the Linux calls, mounts, locks."""
