"""acigen-copy-host: the copy step; host files and their ELF closure into a root."""
