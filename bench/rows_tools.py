"""bench/run rows that pit one helper against the usual tool: pack (4), unpack (5),
extract-deps (6), parallel fetch (7).  Rows 4-6 work on the nginx example's root."""

from __future__ import annotations

import io
import os
import random
import shutil
import tarfile
from pathlib import Path
from typing import Any

import extract_deps
import pack
import unpack
import workspace
from common import Sample, Variant, interleaved, median, run_quietly
from context import Context
from report import Row, ratio_at_most

EXTENSION = {"gzip": "gz", "xz": "xz"}


def packing(ctx: Context) -> list[Row]:
    ctx.need("xz")
    root = ctx.rootfs()
    work = workspace.fresh_dir(ctx.work, "pack")
    (work / "manifest.json").write_bytes(root.manifest)
    rows = []
    for compression, runs in ctx.plan.pack.items():
        ctx.say(f"4: packing the {root.label} with {compression}, {runs} run(s) each")
        rows += pack_rows(ctx, root.label, root.tree, work, compression, runs)
        if compression == "xz" and root.is_nginx:
            ctx.outputs["nginx.aci (xz)"] = work / "acigen-xz.aci"
    return rows


def pack_rows(ctx: Context, label: str, tree: Path, work: Path, compression: str,
              runs: int) -> list[Row]:
    reference = work / f"gnu.tar.{EXTENSION[compression]}"
    ours, cache = work / f"acigen-{compression}.aci", work / "chunks"
    samples = interleaved({
        "tar": Variant(lambda: pack.gnu_tar(tree, compression, reference)),
        "acigen": Variant(lambda: pack.acigen_pack(tree, compression, ours, cache, work),
                          lambda: shutil.rmtree(cache, ignore_errors=True)),
    }, runs)
    ctx.outputs[f"tar.{EXTENSION[compression]}"] = reference
    tool = " ".join(pack.REFERENCE[compression])
    against = f"`tar --sort=name -c | {tool}`"
    time_note = ("both compress on every core (acigen: chunks on threads; xz -T0: blocks); "
                 "acigen also writes the tar stream in Python, cuts it into chunks by "
                 "content and hashes it twice (chunk keys, and SHA-512 for the image ID), a "
                 "few seconds of CPU that GNU tar does not spend. Fix: hash on the "
                 "compression threads, or skip the chunk hashing when no cache is given.")
    size_note = ("each chunk is its own compressed stream, so matches across a chunk "
                 "boundary are lost and each chunk has its own header; smaller chunks "
                 "make incremental repacks cheaper and the image a little larger (the trade "
                 "is measured in helpers/tar/chunks.py)."
                 + (" And acigen's gzip is level 5 against gzip's 6: 0.8% more bytes for "
                    "0.63x the CPU (issue 19)." if compression == "gzip" else ""))
    return [
        Row(4, f"pack the {label}, {compression}", against, ours=median(samples["acigen"]).wall,
            theirs=median(samples["tar"]).wall, target=ratio_at_most(1.2, "<= 1.2x"),
            detail=cpu_detail(samples, runs, "cold chunk cache"), note=time_note),
        Row(4, f"pack the {label}, {compression}: size", f"`{tool}`", unit="MiB",
            ours=ours.stat().st_size, theirs=reference.stat().st_size,
            target=ratio_at_most(1.02, "<= 1.02x"), note=size_note),
    ]


def cpu_detail(samples: dict[str, list[Sample]], runs: int, what: str) -> str:
    cpu = ", ".join(f"{name} {median(runs_).cpu:.2f} s" for name, runs_ in samples.items())
    return f"median of {runs} run(s), {what}; CPU time (user + system): {cpu}"


def unpacking(ctx: Context) -> list[Row]:
    root = ctx.rootfs()
    rows = []
    for fmt in ctx.plan.unpack_formats:
        src = archive(ctx, root.tree, fmt)
        ctx.say(f"5: unpacking {src.name} ({fmt}), {ctx.plan.unpack} run(s) each")
        work = workspace.fresh_dir(ctx.work, "unpack")
        result = unpack.compare(src, ctx.plan.unpack, work, ctx.plan.settle)
        (tar_wall, tar_cpu), (our_wall, our_cpu) = result["tar"], result["acigen"]
        rows.append(Row(
            5, f"unpack the {root.label}, {'uncompressed' if fmt == 'tar' else fmt}",
            "`tar -xpf`", ours=our_wall, theirs=tar_wall, target=ratio_at_most(1.2, "<= 1.2x"),
            detail=f"median of {ctx.plan.unpack} run(s), one archive (GNU tar's) for both;"
                   f" CPU time: tar {tar_cpu:.2f} s, acigen {our_cpu:.2f} s",
            note=unpack_note(fmt, our_cpu, tar_cpu)))
    return rows


def unpack_note(fmt: str, our_cpu: float, tar_cpu: float) -> str:
    why = ("acigen-unpack's extra work is per entry, in Python: each path resolved inside "
           "the root (openat2), then owner, mode, times and xattrs, a system call each"
           + ("; it decompresses on a second core (a thread), as tar's decompressor child "
              "does." if fmt != "tar" else "."))
    if our_cpu <= tar_cpu:
        return ("acigen used less CPU than tar (and its decompressor), so the difference in "
                "wall time is waiting on the filesystem (writing every file of the tree), "
                "within the run-to-run noise on a shared machine. " + why)
    return (f"acigen used {our_cpu / tar_cpu - 1:.0%} more CPU than tar. " + why +
            " Fix: move the per-entry loop to a small C extension, or batch the calls.")


def archive(ctx: Context, tree: Path, fmt: str) -> Path:
    """GNU tar's archive of TREE in FORMAT: row 4's if it made one."""
    made = ctx.outputs.get(f"tar.{fmt}")
    if made is not None:
        return made
    out = ctx.work / "archives" / f"gnu.tar.{fmt}"
    out.parent.mkdir(exist_ok=True)
    if fmt == "tar":
        run_quietly(["tar", "--sort=name", "--numeric-owner", "--xattrs", "-cf", str(out),
                     "-C", str(tree), "."])
    else:
        pack.gnu_tar(tree, {"gz": "gzip", "xz": "xz"}[fmt], out)
    ctx.outputs[f"tar.{fmt}"] = out
    return out


def dependencies(ctx: Context) -> list[Row]:
    ctx.need("lddtree")
    root = ctx.rootfs()
    files = extract_deps.elf_files(root.tree)
    ctx.say(f"6: closure of {len(files)} ELF files, {ctx.plan.deps} run(s) each")
    samples = interleaved({
        "acigen": Variant(lambda: run_quietly(extract_deps.acigen_cmd(root.tree, files))),
        "lddtree": Variant(lambda: run_quietly(extract_deps.lddtree_cmd(root.tree, files))),
    }, ctx.plan.deps)
    return [Row(6, f"extract-deps: all {len(files)} ELF files of the {root.label}",
                "`lddtree -l` (pax-utils)", ours=median(samples["acigen"]).wall,
                theirs=median(samples["lddtree"]).wall, target=ratio_at_most(1.0, "faster"),
                detail=cpu_detail(samples, ctx.plan.deps, "both as fresh processes"),
                note="lddtree parses every library again for each program that needs it; "
                     "acigen parses each file once. Where acigen loses it is on a short list, "
                     "to its interpreter start and imports.")]


def fetching(ctx: Context) -> list[Row]:
    from tests.support.httpserver import FileServer, Resource
    size, rate = ctx.plan.fetch_size, ctx.plan.fetch_rate
    with FileServer() as server:
        urls = [server.add(f"/base-{i}.tar", Resource(random_tar(size, i), rate=rate))
                for i in range(4)]
        template = workspace.fresh_dir(ctx.work, "fetch-manifests")
        for i, url in enumerate(urls):
            workspace.write_manifest(template / f"f{i}.json", [{"type": "image", "url": url}])
        state: dict[str, Any] = {}

        def ninja_fetch(*args: str) -> Variant:
            return Variant(lambda: workspace.ninja(state["dir"], *args, *state["targets"]),
                           lambda: fresh_fetch_build(ctx, template, state))

        ctx.say(f"7: fetching 4 archives at {rate >> 10} KiB/s each, {ctx.plan.fetch} run(s)")
        samples = interleaved({"default": ninja_fetch(), "-j4": ninja_fetch("-j4"),
                               "-j1": ninja_fetch("-j1")}, ctx.plan.fetch)
    what = f"fetch 4 archives of {size / 2**20:.0f} MiB ({rate >> 10} KiB/s per connection)"
    sequential = median(samples["-j1"]).wall
    detail = (f"the fetch edges only, each run with an empty download cache; the floor is "
              f"{size / rate:.1f} s for one archive. The fetch pool is 4 deep, but ninja's "
              f"default -j here is {default_jobs()}"
              + (": the fourth download waits for a free job" if default_jobs() < 4 else ""))
    return [
        Row(7, f"{what}, `ninja`", "one after another (`ninja -j1`)",
            ours=median(samples["default"]).wall, theirs=sequential, detail=detail),
        Row(7, f"{what}, `ninja -j4`", "one after another (`ninja -j1`)",
            ours=median(samples["-j4"]).wall, theirs=sequential),
    ]


def default_jobs() -> int:
    """ninja's default parallelism: 2 on 1 CPU, 3 on 2, cores + 2 above."""
    cores = os.cpu_count() or 1
    return {0: 2, 1: 2, 2: 3}.get(cores, cores + 2)


def fresh_fetch_build(ctx: Context, template: Path, state: dict) -> None:
    """A new build directory and download cache for the four manifests."""
    work = workspace.fresh_dir(ctx.work, "fetch")
    names = []
    for manifest in sorted(template.iterdir()):
        shutil.copy2(manifest, work / manifest.name)
        names.append(manifest.name)
    workspace.acigen(work, "--cache-dir", str(work / "cache"), *names)
    targets = workspace.ninja(work, "-t", "targets", "rule", "acigen_fetch").split()
    if len(targets) != 4:
        raise RuntimeError(f"expected 4 fetch edges, found {targets}")
    state.update(dir=work, targets=targets)


def random_tar(size: int, seed: int) -> bytes:
    """A tar holding one file of SIZE random (incompressible) bytes."""
    data = random.Random(seed).randbytes(size)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("data")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
