"""The programs that ninja runs, and the library they share.

Installed as `acigen.helpers`; each program is a package run as
`python -I -m acigen.helpers.NAME` (its `__main__.py`), also installed as the
console script acigen-NAME.  Shared core, bottom up:

    core/          a helper's main (umask, signals, the exit), the Linux calls
                   (linux.py: the one libc), mounts and the mount table,
                   lock files, image temporaries, iterative tree removal;
                   rootless builds' user namespace (userns) and the build
                   directory's owner record (identity)
    rootfs/        an image root seen safely from outside (Root), its walk,
                   writes into it, copies from the host
    layers/        the layer store: one step's output as a layer, its record,
                   the overlay mounter
    tar/           tar reading and writing, decompression, applying an
                   archive to a root, chunked compression
    elf/           the ELF run-time closure inside a root (no code runs)

Programs (one per step kind; then `acigen run`, `gc`, `clean`, `verify`):

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
    builddir/      `acigen gc`, `clean` and `verify` on a build directory

Errors and exit codes (errors.py), file I/O (fileio.py), the spec files
(specs.py) and the step-kind registry (rules.py) are leaf modules of the
compiler package that the helpers import; the compiler imports nothing
from here (its cli imports run, builddir and the runtime check lazily).
"""
