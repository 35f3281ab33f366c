"""acigen-unpack: the image step; an archive or an ACI unpacked into a root."""
