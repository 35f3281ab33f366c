"""The programs that ninja runs, and the library they share.

Installed as `acigen.helpers`; each program is a package run as
`python -I -m acigen.helpers.NAME` (its `__main__.py`), also installed as the
console script acigen-NAME.  Shared core, bottom up:

    core/          errors and exit, I/O (atomic and JSON writes, depfiles,
                   temporaries), the Linux calls and mounts, locks, signals;
                   rootless builds' user namespace (userns) and the build
                   directory's owner record (identity)
    rootfs/        an image root seen safely from outside (Root), its walk,
                   writes into it, copies from the host
    layers/        the layer store: one step's output as a layer, its record
    tar/           tar reading and writing, decompression, applying an
                   archive to a root, chunked compression
    elf/           the ELF run-time closure inside a root (no code runs)

Programs (one per step kind, plus `acigen run`):

    fetch/         download an image archive into the cache, verified
    unpack/        the image step: an archive unpacked into a root
    copy_host/     the copy step: host files and their closure into a root
    chroot_run/    cmd and ansible steps, run in a confined container
    extract/       the extract step: a root pruned to what it needs
    extract_deps/  print what programs in a root need at run time
    python_env/    a host Python and its standard library into a root
    pack/          an image's layers packed into an ACI
    oci/           an image's layers written as an OCI image archive
    sign/          a detached signature for an image
    run/           `acigen run`: an ACI in a throw-away container
"""
