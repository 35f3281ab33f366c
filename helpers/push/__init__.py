"""acigen-push: an OCI image archive pushed to a registry (the --push edge)."""
