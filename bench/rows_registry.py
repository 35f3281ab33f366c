"""bench/run row 11: the shared layer cache (--cache-repo), two machines.

Two fresh build directories, each with an empty download cache, build the nginx
example against one cache repository in Debian's docker-registry on 127.0.0.1:
the first runs every step and pushes its chroot layers and the image's compressed
chunks, the second pulls them.
The row is the second build's time against the first's (target: at most 0.3x).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import workspace
from common import Sample, median, timed, use_repo_support
from context import Context
from report import Row, ratio_at_most
from workspace import acigen, ninja


def _build(work: Path, minbase: Path, repo: str) -> Sample:
    workspace.link_minbase(work, minbase)
    workspace.nginx_manifest(work)
    args = ("--cache-dir", str(work / "cache"), "--tls-verify", "false", "--cache-repo", repo)
    return timed(lambda: (acigen(work, *args, "nginx.json"), ninja(work)))


def _edge_times(workdir: Path) -> list[tuple[str, float]]:
    """(edge, seconds) of WORKDIR's build, in the order they started (ninja's log)."""
    from tests.support.busybox import ninja_log
    log = ninja_log(workdir)
    return [(target, (end - start) / 1000)
            for target, (start, end) in sorted(log.items(), key=lambda item: item[1])]


def _edge_medians(work: Path) -> str:
    """Each edge of the second machines' builds: its median time, e.g. 02-cmd 0.87."""
    by_edge: dict[str, list[float]] = {}
    for two in sorted(work.glob("two-*")):
        for target, seconds in _edge_times(two):
            name = Path(target).name.split(".")[0].rsplit("-", 1)[0]  # 02-cmd-KEY: 02-cmd
            by_edge.setdefault(name, []).append(seconds)
    return ", ".join(f"{name} {statistics.median(each):.2f}" for name, each in by_edge.items())


def layer_cache(ctx: Context) -> list[Row]:
    ctx.need("docker-registry")
    use_repo_support()
    from tests.support.registry import running_registry
    minbase = ctx.minbase()
    firsts, seconds, same = [], [], True
    work = workspace.fresh_dir(ctx.work, "layer-cache")
    with running_registry(work) as registry:
        for run in range(ctx.plan.clean_nginx):
            repo = registry.ref(f"bench/nginx-{run}")  # a new, empty cache each time
            ctx.say(f"11: nginx with --cache-repo, pair {run + 1}/{ctx.plan.clean_nginx}")
            one = workspace.fresh_dir(work, f"one-{run}")
            two = workspace.fresh_dir(work, f"two-{run}")
            firsts.append(_build(one, minbase, repo))
            seconds.append(_build(two, minbase, repo))
            same = same and (one / "nginx.aci").read_bytes() == (two / "nginx.aci").read_bytes()
    if not same:
        raise RuntimeError("the second machine's nginx.aci differs from the first's")
    detail = (f"{len(firsts)} pairs; first machine {', '.join(f'{s.wall:.3g}' for s in firsts)} s, "
              f"second {', '.join(f'{s.wall:.3g}' for s in seconds)} s; images identical; "
              f"the second machine's edges (median s): {_edge_medians(work)}")
    return [Row(11, "a second machine's clean nginx build with --cache-repo",
                "the first machine's (which runs the steps and pushes)",
                ours=median(seconds).wall, theirs=median(firsts).wall,
                target=ratio_at_most(0.3, "<= 0.3x"), detail=detail,
                note="the second build still unpacks the base, applies the pulled layers "
                     "and packs the image (its chunks pulled from the cache repository and "
                     "checked, not compressed); the chroot steps are skipped")]
