"""The fixed text of bench/RESULTS.md: how to run bench/run, and what each row compares."""

from __future__ import annotations

HOW_TO_RUN = """\
`sudo bench/run` measures acigen against the alternatives, side by side: for each row,
acigen's median over several runs, the alternative's median, and their ratio (below
1.00x, acigen is faster or smaller). It builds what it needs once (a Debian bookworm
minbase root by debootstrap, cached in ~/.cache/acigen-tests; the nginx example on it,
which needs the Debian mirror), installs what it misses with apt-get (pax-utils for
lddtree, debootstrap, buildah; `--no-install` to skip the rows instead) and names every row it
skips and why. `--quick` (fewer runs, no xz variant of the incremental rebuild, no tornado
image) finishes in under 5 minutes on 2 cores; the full run takes about 15. `--rows 1,3`
runs some rows only. Each run rewrites this file; it is committed, so
`git log -p bench/RESULTS.md` is the history."""

ROW_GUIDE = """\
1. **No-op**: `ninja` in an up-to-date build of 10 steps (the minbase root and nine
   shell steps), against `true` (the floor of running any command) and against a full
   build of the same manifest: aci-packer had no incremental mode, every run was one.
2. **Incremental**: the nginx example (examples/nginx), its last step edited (one more
   file written), then `ninja`, which reruns acigen, that step and the pack; against
   `acigen nginx.json && ninja` in an empty directory (apt-get reaches the Debian mirror).
   With gzip (acigen's default) and, in the full run, with xz.
3. **Regeneration**: `acigen` after a manifest edit, on 50 steps and on 20 manifests,
   against `python -c pass` with the same interpreter: acigen is a Python program, so
   the interpreter's start is the floor of any implementation; aci-packer had no such
   step at all, and ninja runs acigen only when a manifest changed.
4. **Pack**: the nginx image's root and manifest, `acigen-pack` with an empty chunk
   cache against `tar --sort=name --numeric-owner -c | gzip -6` (or `xz -T0 -6`): the
   same bytes in, the same compressor; the same level for xz, while acigen's gzip is
   level 5 (issue 19: 0.63x the CPU of level 6 for 0.8% more bytes).
5. **Unpack**: GNU tar's archives of that root (row 4's gzip one; in the full run also
   xz and uncompressed), `acigen-unpack` against `tar --numeric-owner --xattrs -xpf`,
   each into a new directory on the same filesystem.
6. **extract-deps**: the closure of every ELF file of that root in one call, against
   pax-utils' `lddtree -l` on the same files (run by the same interpreter, for pyelftools).
7. **Parallel fetch**: the four fetch edges of a four-image build, from an HTTP server on
   127.0.0.1 that limits each connection's rate, `ninja` (the fetch pool is 4 deep)
   against `ninja -j1`, one download after another as aci-packer did.
8. **Image size**: the examples built with `acigen -C xz` against the sizes aci-packer's
   README shows (`ls -lh`: its M is MiB).
10. **Peers**: the nginx example built by buildah (bench/nginx.Containerfile: the same
   base tarball and commands, `bud --layers` with runc, then `push` to an oci-archive,
   gzip) against acigen writing the ACI and the OCI archive (`--oci`): clean builds
   (empty build directory; empty buildah storage), no-op rebuilds and the same edit of
   the last step. CPU time is that of the processes each waited for.
11. **Shared layer cache**: the nginx example built in two empty build directories
   against one registry on 127.0.0.1 (`--cache-repo`): the second machine's clean
   build, which pulls the cmd steps' layers, against the first's, which runs them.
12. **Rootless**: the nginx example built by an ordinary user with a subordinate id
   range (`runuser`; every helper in a user namespace) against the same build by root:
   clean builds in empty directories and rebuilds after an edit of the last step,
   interleaved, the same Python, ninja and plain environment. Rootless twice: with the
   auto mode's layers (kernel overlayfs in the user namespace) and with
   `--layer-mode fuse` (fuse-overlayfs; the user given /dev/fuse for the row)."""
