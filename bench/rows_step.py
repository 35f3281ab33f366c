"""bench/run row 9: what a chroot step costs on top of the container it runs
in: a `cmd` step running /bin/true against a bare `runc run` of /bin/true in
the same busybox root (bench/chroot_run.py has the other variants)."""

from __future__ import annotations

from chroot_run import step_variants
from common import interleaved, median
from context import Context
from report import Row, ratio_at_most

from tests.support.rootfs import busybox_tree


def step_overhead(ctx: Context) -> list[Row]:
    ctx.need("runc")
    work = ctx.work / "step-overhead"
    root = busybox_tree(work / "root")
    runs = max(ctx.plan.regen * 3, 10)
    ctx.say(f"9: a cmd step against a bare runc run, {runs} runs each")
    samples = interleaved(step_variants(work, root), runs, warm_up=True)
    ours, theirs = median(samples["step"]), median(samples["bare runc"])
    confined = median(samples["confined runc"])
    return [Row(9, "a `cmd` step running /bin/true (overlay, container, stamp)",
                "a bare `runc run` of /bin/true (`runc spec` defaults)", ours=ours.wall,
                theirs=theirs.wall, target=ratio_at_most(1.2, "at most 1.2x"),
                detail=f"CPU {ours.cpu:.3f} s against {theirs.cpu:.3f} s, medians of {runs}; "
                       f"runc with the step's own confinement alone (seccomp profile, masked "
                       f"paths, fresh /proc, /dev, /sys): {confined.wall * 1000:.1f} ms, "
                       f"{confined.wall / theirs.wall:.2f}x the bare run",
                note="runc with the step's confinement alone (the detail below) takes about "
                     "the whole 1.2x; the step also starts a Python interpreter with the "
                     "helper's imports, wipes and mounts its overlay layer, converts the "
                     "seccomp profile, prepares build-time files and mount points, starts a "
                     "guard process, and writes its layer record and stamp; "
                     "`sudo .venv/bin/python bench/chroot_run.py [--crun]` splits the cost.")]
