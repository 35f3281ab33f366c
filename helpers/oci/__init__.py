"""acigen-oci: an image's layers written as an OCI image archive."""
