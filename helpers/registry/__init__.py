"""OCI registries: pull an image step's base, push the result, share layers.

    reference.py   docker://HOST/NAME:TAG|@sha256:..., oci-archive:PATH, oci:DIR
    auth.py        credentials (containers auth files) and TLS settings
    client.py      a distribution-spec client on requests (basic and bearer auth)
    media.py       manifests, indexes, descriptors: parsing and platform choice
    pull.py        a docker:// reference into the download cache (the fetch edge)
    layout.py      reading local OCI images (oci-archive:, oci:)
    apply.py       OCI layers applied in order, whiteouts and opaque directories too
    image.py       the image step with `oci` (what acigen-unpack runs for it)
    appdefaults.py the image config's Env, Entrypoint/Cmd, ... as the app's defaults
    push.py        an --oci archive to a registry, only the missing blobs (acigen-push)
    layercache.py  --cache-repo: layers keyed by content, pulled instead of run
    stepfield.py   the compiler's side: the `oci` field of the image step
    options.py     the compiler's side: --push, --cache-repo, --authfile, TLS options
"""
