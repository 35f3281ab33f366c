"""acigen-chroot-run: cmd and ansible steps run inside a confined container."""
