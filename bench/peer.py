"""bench/run's peer section (row 10): the nginx example built by acigen and by buildah.

The same image both ways: acigen from examples/nginx/nginx.json (an ACI and, with
--oci, an OCI archive), buildah from bench/nginx.Containerfile (`bud --layers`, runc,
then `push` to an oci-archive, gzip).  Both start from the minbase tarball and reach
the Debian mirror for apt-get.  Clean builds (acigen: an empty build directory;
buildah: empty storage), no-op rebuilds and rebuilds after an edit of the last step
(the same edit for both), interleaved; wall and CPU time of each whole run.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import workspace
from common import REPO, Sample, Variant, interleaved, median, run_quietly
from context import Context
from report import Row, Target, ratio_at_most

CONTAINERFILE = REPO / "bench" / "nginx.Containerfile"
LAST_STEP = "RUN rm -rf /var/lib/apt/lists/*"


@dataclass
class Buildah:
    """buildah with its own storage under WORK, so the machine's is never touched."""

    work: Path
    runtime: str

    @property
    def storage(self) -> Path:
        return self.work / "storage"

    def cmd(self, *args: str) -> list[str]:
        return ["buildah", "--root", str(self.storage), "--runroot", str(self.work / "run"),
                *args]

    def context(self, edit: int = 0) -> Path:
        """The build context: the Containerfile (its last step edited if EDIT) and base."""
        context = self.work / "context"
        context.mkdir(exist_ok=True)
        text = CONTAINERFILE.read_text()
        if edit:
            text = text.replace(LAST_STEP, f"{LAST_STEP}; echo {edit} > /etc/bench-edit")
        (context / "Containerfile").write_text(text)
        return context

    def build(self, edit: int = 0) -> None:
        """`bud --layers` then the OCI archive: what `acigen --oci` makes."""
        context = self.context(edit)
        run_quietly(self.cmd("bud", "--layers", "--runtime", self.runtime, "--network", "host",
                             "-f", str(context / "Containerfile"), "-t", "bench-nginx",
                             str(context)))
        out = self.work / "nginx.oci.tar"
        out.unlink(missing_ok=True)
        run_quietly(self.cmd("push", "--compression-format", "gzip", "bench-nginx",
                             f"oci-archive:{out}:bench-nginx"))

    def empty(self) -> None:
        """Back to empty storage (no image, no cached layer)."""
        if self.storage.exists():
            run_quietly(self.cmd("rm", "--all"))
            run_quietly(self.cmd("rmi", "--all", "--force"))
        release_mounts(self.work)
        shutil.rmtree(self.storage, ignore_errors=True)


def release_mounts(under: Path) -> None:
    """containers/storage leaves its overlay directory bind-mounted on itself."""
    prefix = str(under) + "/"
    with open("/proc/self/mountinfo") as src:
        points = [line.split()[4] for line in src if line.split()[4].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def peer_rows(ctx: Context) -> list[Row]:
    ctx.need("buildah")
    runtime = shutil.which("runc")
    if runtime is None:
        raise RuntimeError("buildah runs its steps with runc here (crun refuses this "
                           "machine's hybrid cgroups), and runc is not installed")
    buildah = Buildah(workspace.fresh_dir(ctx.work, "buildah"), runtime)
    try:
        minbase = ctx.minbase()
        shutil.copyfile(minbase, buildah.context() / "bookworm-minbase.tar")
        return measure(ctx, buildah)
    finally:
        buildah.empty()
        shutil.rmtree(buildah.work, ignore_errors=True)


def measure(ctx: Context, buildah: Buildah) -> list[Row]:
    state: dict[str, Path] = {}

    def acigen_clean() -> None:
        workdir = ctx.nginx_dir("peer-acigen")
        workspace.acigen(workdir, "--oci", "nginx.oci.tar", "nginx.json")
        workspace.ninja(workdir)
        state["acigen"] = workdir

    runs = ctx.plan.clean_nginx
    ctx.say(f"10: clean builds of nginx, acigen (ACI + OCI) and buildah, {runs} each")
    clean = interleaved({"acigen": Variant(acigen_clean),
                         "buildah": Variant(buildah.build, buildah.empty)}, runs)
    workdir = state["acigen"]
    sizes = ((workdir / "nginx.oci.tar").stat().st_size,
             (buildah.work / "nginx.oci.tar").stat().st_size)
    ctx.say(f"10: no-op rebuilds, {ctx.plan.incremental} each")
    noop = interleaved({"acigen": Variant(lambda: workspace.ninja(workdir)),
                        "buildah": Variant(buildah.build)}, ctx.plan.incremental)
    ctx.say(f"10: edits of the last step, rebuilt, {ctx.plan.incremental} each")
    edits = {"acigen": iter(range(1, 100)), "buildah": iter(range(1, 100))}
    manifest = workdir / "nginx.json"
    edited = interleaved({
        "acigen": Variant(lambda: workspace.ninja(workdir),
                          lambda: workspace.edit_nginx(manifest, next(edits["acigen"]))),
        "buildah": Variant(lambda: buildah.build(next(edits["buildah"]))),
    }, ctx.plan.incremental)
    return rows(clean, noop, edited, sizes, runs, ctx.plan.incremental)


def cpu_of(samples: list[Sample]) -> float:
    return median(samples).cpu


def rows(clean: dict[str, list[Sample]], noop: dict[str, list[Sample]],
         edited: dict[str, list[Sample]], sizes: tuple[int, int], runs: int,
         rebuilds: int) -> list[Row]:
    against = "buildah 1.28 (`bud --layers`, runc, `push` oci-archive)"

    def detail(samples: dict[str, list[Sample]], what: str, count: int) -> str:
        walls = {name: ", ".join(f"{s.wall:.3g}" for s in runs_) for name, runs_ in
                 samples.items()}
        return (f"{what}; median of {count}; runs (s): acigen {walls['acigen']}; buildah "
                f"{walls['buildah']}; CPU (user + system): acigen "
                f"{cpu_of(samples['acigen']):.2f} s, buildah {cpu_of(samples['buildah']):.2f} s")

    def row(what: str, samples: dict[str, list[Sample]], how: str, count: int,
            cpu: bool = False, target: Target | None = None) -> Row:
        pick = cpu_of if cpu else (lambda s: median(s).wall)
        return Row(10, what, against, ours=pick(samples["acigen"]),
                   theirs=pick(samples["buildah"]), detail=detail(samples, how, count),
                   note=NOTES.get(what, ""), target=target)

    clean_how = ("acigen: `acigen --oci nginx.oci.tar nginx.json && ninja` in an empty "
                 "directory; buildah: `bud --layers` into empty storage, then `push "
                 "oci-archive:` (gzip); apt-get reaches the Debian mirror in both")
    return [
        row("clean build of the nginx example, ACI + OCI (gzip)", clean, clean_how, runs,
            target=ratio_at_most(0.8, "<= 0.8x")),
        row("clean build of the nginx example, ACI + OCI (gzip): CPU", clean, clean_how, runs,
            cpu=True, target=ratio_at_most(0.8, "<= 0.8x")),
        Row(10, "nginx OCI archive size (gzip)", against, unit="MiB", ours=sizes[0],
            theirs=sizes[1], note=NOTES["size"], target=ratio_at_most(1.0, "no larger")),
        row("no-op rebuild of the nginx example", noop,
            "acigen: `ninja`; buildah: `bud --layers` (every step cached) and `push` (which "
            "writes the archive again: buildah has no up-to-date check for it)", rebuilds,
            target=ratio_at_most(1.0, "faster")),
        row("edit the nginx example's last step, rebuild (ACI + OCI)", edited,
            "the same edit (one more file written by the last step); acigen: `ninja` "
            "(acigen, the step, pack and OCI); buildah: `bud --layers` and `push`", rebuilds,
            target=ratio_at_most(1.0, "faster")),
    ]


NOTES = {
    "clean build of the nginx example, ACI + OCI (gzip)": (
        "acigen writes two images (the ACI and the OCI archive) where buildah writes one; "
        "both spend most of a clean build in apt-get, then compressing the layers."),
    "clean build of the nginx example, ACI + OCI (gzip): CPU": (
        "acigen compresses the ACI and the OCI layers (the big files' chunks once for "
        "both, issue 19), buildah one set of layers. CPU time counts the processes each "
        "tool waited for: a container process buildah's runtime does not wait for would "
        "be left out of buildah's figure, never acigen's."),
    "size": "each chunk is its own gzip member, so matches across chunk boundaries are lost.",
}
