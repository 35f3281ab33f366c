"""What every helper shares: errors and exit, I/O, the Linux calls, locks, signals."""
