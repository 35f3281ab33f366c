"""--cache-repo: two build directories with empty local caches ("two machines")
building the same manifest; the second runs no cmd step and makes the same bytes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.registry.conftest import STEPS, Tiny, build, ok, rootfs_names
from tests.support.build import acigen, run_ninja
from tests.support.registry import Registry

PLAIN = ("--tls-verify", "false")
RANDOM = "head -c 64 /dev/urandom | od -x > /random && rm /etc/b && mkdir -p /made/here"


def machine(work: Path, tiny: Tiny, script: str = "echo from the script > /scripted\n") -> Path:
    """A build directory with its own copy of the base image and script."""
    work.mkdir(parents=True)
    shutil.copytree(tiny.layout, work / "layout")
    (work / "step.sh").write_text("#!/bin/sh\n" + script)
    (work / "step.sh").chmod(0o755)
    doc = {"name": "example.com/cached",
           "app": {"exec": ["/bin/sh"], "user": "0", "group": "0"},
           STEPS: [{"type": "image", "oci": "oci:layout"},
                   {"type": "cmd", "copy": False, "path": "/bin/sh", "args": ["-c", RANDOM]},
                   {"type": "cmd", "path": "step.sh"}]}
    (work / "t.json").write_text(json.dumps(doc, indent=2))
    return work


def test_second_machine_pulls_every_cmd_layer_and_makes_the_same_bytes(
        registry: Registry, tiny: Tiny, tmp_path: Path) -> None:
    repo = ("--cache-repo", registry.ref("layers/cache"))
    first = machine(tmp_path / "one", tiny)
    out = ok(build(first, *PLAIN, *repo, "--oci", "t.oci.tar", cache=tmp_path / "cache-one"))
    assert out.count("pushed to the layer cache") == 2, out
    second = machine(tmp_path / "two", tiny)
    out = ok(build(second, *PLAIN, *repo, "--oci", "t.oci.tar", cache=tmp_path / "cache-two"))
    assert out.count("pulled from the layer cache") == 2, out
    assert "pushed to the layer cache" not in out
    # /random came from /dev/urandom: equal bytes mean the step did not run again
    names = rootfs_names(second / "t.aci")
    assert {"random", "made/here", "scripted"} <= names and "etc/b" not in names
    assert (first / "t.aci").read_bytes() == (second / "t.aci").read_bytes()
    assert (first / "t.oci.tar").read_bytes() == (second / "t.oci.tar").read_bytes()

    # a changed script is new content under the same name: that step runs, the one
    # before it is still pulled
    third = machine(tmp_path / "three", tiny, "echo changed > /scripted\n")
    out = ok(build(third, *PLAIN, *repo, cache=tmp_path / "cache-three"))
    assert out.count("pulled from the layer cache") == 1, out
    assert out.count("pushed to the layer cache") == 1, out


def _layer_requests(registry: Registry, since: int) -> tuple[set[str], set[str]]:
    """(layer tags, blob digests) asked for since request number SINCE, the
    pack's entry (acigen-pack-...) left out."""
    tags, blobs = set(), set()
    for method, uri in registry.requests()[since:]:
        if method == "GET" and "/manifests/acigen-" in uri and "/acigen-pack-" not in uri:
            tags.add(uri.rsplit("/", 1)[1])
        if method == "GET" and "/blobs/" in uri:
            blobs.add(uri.rsplit("/", 1)[1])
    return tags, blobs


def _member_layers(cache: Path, digests: set[str]) -> list[list[tuple[int, int]]]:
    """The gzip members of each gzip blob among DIGESTS in the download cache
    CACHE: layers are pushed in members that say their lengths (so a second
    machine inflates them on two threads)."""
    from acigen.helpers.tar.gzipmembers import spans
    out = []
    for digest in digests:
        path = cache / "fetch" / "sha256" / digest.split(":")[1]
        with open(path, "rb") as src:
            if src.read(2) == b"\x1f\x8b":
                found = spans(src.fileno(), path.stat().st_size)
                assert found, f"{digest}: one gzip stream"
                out.append(found)
    return out


def _prefetched(registry: Registry, tiny: Tiny, tmp_path: Path, name: str
                ) -> tuple[Path, set[str], set[str]]:
    """A first machine's build, then a second machine's up to its image step:
    (its build directory, the layer tags and the blobs the image step asked for)."""
    repo = ("--cache-repo", registry.ref(name))
    ok(build(machine(tmp_path / "one", tiny), *PLAIN, *repo, cache=tmp_path / "cache-one"))
    second = machine(tmp_path / "two", tiny)
    before = len(registry.requests())
    acigen(second, "--cache-dir", str(tmp_path / "cache-two"), *PLAIN, *repo, "t.json")
    run_ninja(second, "t/step-01")
    image_log = next((second / ".acigen" / "logs").glob("01-image-*.log")).read_text()
    assert "prefetched 2 of 2 layers above from the layer cache" in image_log, image_log
    tags, blobs = _layer_requests(registry, before)
    assert len(tags) == 2 and blobs, registry.requests()[before:]
    return second, tags, blobs


def test_the_image_step_fetches_the_layers_above_it_so_their_steps_ask_nothing(
        registry: Registry, tiny: Tiny, tmp_path: Path) -> None:
    """The image step computes the cache keys of the cmd steps above it and pulls
    their layers while it unpacks: once it is done, they need no registry."""
    second, prefetched_tags, prefetched_blobs = _prefetched(registry, tiny, tmp_path,
                                                            "layers/prefetch")
    assert len(_member_layers(tmp_path / "cache-two", prefetched_blobs)) == 2
    middle = len(registry.requests())
    out = run_ninja(second).stdout
    assert out.count("pulled from the layer cache") == 2, out
    tags, blobs = _layer_requests(registry, middle)
    assert not tags and not blobs & prefetched_blobs, registry.requests()[middle:]
    keys = {f"acigen-{p.read_text().strip()}"
            for p in (second / ".acigen" / "layers").glob("0[23]-cmd-*/cache-key")}
    assert keys == prefetched_tags  # predicted as the steps computed them
    assert (tmp_path / "one" / "t.aci").read_bytes() == (second / "t.aci").read_bytes()


def test_a_prefetched_layer_damaged_in_the_download_cache_is_fetched_again(
        registry: Registry, tiny: Tiny, tmp_path: Path) -> None:
    second, _tags, blobs = _prefetched(registry, tiny, tmp_path, "layers/damaged")
    objects = tmp_path / "cache-two" / "fetch" / "sha256"
    layer = max((objects / digest.split(":")[1] for digest in blobs),
                key=lambda path: path.stat().st_size)
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 1
    layer.write_bytes(bytes(data))
    middle = len(registry.requests())
    out = run_ninja(second).stdout
    assert out.count("pulled from the layer cache") == 2, out
    _tags, fetched = _layer_requests(registry, middle)
    assert f"sha256:{layer.name}" in fetched  # dropped, and downloaded again
    assert (tmp_path / "one" / "t.aci").read_bytes() == (second / "t.aci").read_bytes()


def test_unreachable_cache_is_a_warning_and_the_steps_run(tiny: Tiny, tmp_path: Path) -> None:
    from tests.support.net import free_port
    work = machine(tmp_path / "w", tiny)
    result = build(work, "--cache-repo", f"docker://127.0.0.1:{free_port()}/cache",
                   cache=tmp_path / "cache")
    out = ok(result)
    assert "warning: the layer cache" in result.stderr + out
    assert "pulled" not in out


def test_a_hostile_cached_layer_fails_the_step_with_one_line(
        registry: Registry, tiny: Tiny, tmp_path: Path) -> None:
    import urllib.request

    from tests.registry.conftest import error_lines
    from tests.registry.ocimake import Entry, archive, layer_tar, oci_layout
    from tests.support.registry import push_archive
    repo = ("--cache-repo", registry.ref("layers/hostile"))
    ok(build(machine(tmp_path / "one", tiny), *PLAIN, *repo, cache=tmp_path / "c1"))
    with urllib.request.urlopen(f"http://{registry.host}/v2/layers/hostile/tags/list") as r:
        tags = [t for t in json.loads(r.read())["tags"] if not t.startswith("acigen-pack-")]
    assert len(tags) == 2
    for tag in tags:  # every cached layer replaced by one that writes outside the root
        layout = tmp_path / tag
        oci_layout(layout, [layer_tar([Entry("../escape", b"x")])],
                   annotations={"org.acigen.cache-key": tag.removeprefix("acigen-")})
        push_archive(registry, archive(layout, tmp_path / f"{tag}.tar"), f"layers/hostile:{tag}")
    result = build(machine(tmp_path / "two", tiny), *PLAIN, *repo, cache=tmp_path / "c2")
    lines = error_lines(result)
    assert len(lines) == 1 and "member '../escape': its path '../escape' leaves the root" \
        in lines[0], lines
    assert not (tmp_path / "two" / "escape").exists() and not (tmp_path / "escape").exists()


# -- the pack's chunks, shared through the same repository (helpers/registry/chunkshare.py)

def _registry_json(registry: Registry, path: str) -> dict:
    import urllib.request
    request = urllib.request.Request(f"http://{registry.host}/v2/{path}", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def _registry_blob(registry: Registry, name: str, digest: str) -> bytes:
    import urllib.request
    with urllib.request.urlopen(f"http://{registry.host}/v2/{name}/blobs/{digest}") as r:
        return r.read()


def _upload(registry: Registry, name: str, data: bytes) -> str:
    import hashlib
    import urllib.parse
    import urllib.request
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = urllib.request.Request(f"http://{registry.host}/v2/{name}/blobs/uploads/",
                                   method="POST")
    with urllib.request.urlopen(start) as response:
        location = urllib.parse.urljoin(f"http://{registry.host}/", response.headers["Location"])
    separator = "&" if "?" in location else "?"
    put = urllib.request.Request(f"{location}{separator}digest={digest}", data=data,
                                 method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(put).close()
    return digest


def _replace_pack_entry(registry: Registry, name: str, tamper, old_sizes: bool = False) -> None:
    """The pack's entry in repository NAME, its chunks changed by TAMPER(name, bytes)
    (which returns the new bytes), pushed again under the same tag; OLD_SIZES: the
    index keeps the sizes it had."""
    import urllib.request
    tags = [t for t in _registry_json(registry, f"{name}/tags/list")["tags"]
            if t.startswith("acigen-pack-")]
    assert len(tags) == 1, tags
    manifest = _registry_json(registry, f"{name}/manifests/{tags[0]}")
    index = json.loads(_registry_blob(registry, name, manifest["config"]["digest"]))
    data = _registry_blob(registry, name, manifest["layers"][0]["digest"])
    chunks, at = [], 0
    for chunk_name, size in index["chunks"]:
        chunks.append([chunk_name, tamper(chunk_name, data[at:at + size])])
        at += size
    new_data = b"".join(blob for _n, blob in chunks)
    sizes = [size for _n, size in index["chunks"]] if old_sizes else [len(b) for _n, b in chunks]
    new_index = json.dumps({"chunks": [[n, size] for (n, _b), size in
                                       zip(chunks, sizes, strict=True)]}).encode()
    manifest["config"].update(digest=_upload(registry, name, new_index), size=len(new_index))
    manifest["layers"][0].update(digest=_upload(registry, name, new_data), size=len(new_data))
    put = urllib.request.Request(
        f"http://{registry.host}/v2/{name}/manifests/{tags[0]}", method="PUT",
        data=json.dumps(manifest).encode(),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    urllib.request.urlopen(put).close()


def _other_content(_name: str, blob: bytes) -> bytes:
    """A gzip member as acigen writes one, of other bytes than the chunk named."""
    import zlib

    from acigen.helpers.tar.chunks import _gzip_member
    return _gzip_member(zlib.decompress(blob, 31) + b"tampered")


def _two_members(_name: str, blob: bytes) -> bytes:
    """The same bytes, as two gzip members: what gzip readers accept, but not
    the bytes acigen writes (an image of it would differ from a clean build's)."""
    import zlib

    from acigen.helpers.tar.chunks import _gzip_member
    data = zlib.decompress(blob, 31)
    return _gzip_member(data[:100]) + _gzip_member(data[100:])


def test_second_machine_takes_the_packed_chunks_from_the_cache(
        registry: Registry, tiny: Tiny, tmp_path: Path) -> None:
    repo = ("--cache-repo", registry.ref("layers/chunks"))
    first = machine(tmp_path / "one", tiny)
    out = ok(build(first, *PLAIN, *repo, cache=tmp_path / "cache-one"))
    assert "chunks pushed to the cache repository" in out, out
    second = machine(tmp_path / "two", tiny)
    out = ok(build(second, *PLAIN, *repo, cache=tmp_path / "cache-two"))
    pack = next(line for line in out.splitlines() if line.startswith("t.aci: sha512-"))
    chunks = int(pack.split(" chunks, ")[0].rsplit(" ", 1)[1])
    assert f"({chunks} from the cache repository)" in pack and "pushed" not in pack, out
    assert (first / "t.aci").read_bytes() == (second / "t.aci").read_bytes()


def _first_machine_pushes(registry: Registry, tiny: Tiny, tmp_path: Path,
                          name: str) -> tuple[Path, tuple[str, str]]:
    """A first machine's build with the cache repository NAME: (its build
    directory, the --cache-repo option for the machines after it)."""
    repo = ("--cache-repo", registry.ref(name))
    first = machine(tmp_path / "one", tiny)
    ok(build(first, *PLAIN, *repo, cache=tmp_path / "cache-one"))
    return first, repo


def test_tampered_chunks_are_compressed_here_and_the_image_stays_the_same(
        registry: Registry, tiny: Tiny, tmp_path: Path) -> None:
    name = "layers/tampered"
    first, repo = _first_machine_pushes(registry, tiny, tmp_path, name)
    for run, tamper in enumerate((_other_content, _two_members)):
        _replace_pack_entry(registry, name, tamper)
        work = machine(tmp_path / f"m{run}", tiny)
        result = build(work, *PLAIN, *repo, cache=tmp_path / f"cache-{run}")
        out = ok(result)
        assert "are not what their names say and were compressed here" in \
            result.stdout + result.stderr, result.stdout + result.stderr
        assert "from the cache repository)" not in out and "chunks pushed" in out, out
        assert (first / "t.aci").read_bytes() == (work / "t.aci").read_bytes()


def test_a_chunk_index_that_does_not_add_up_is_a_warning(
        registry: Registry, tiny: Tiny, tmp_path: Path) -> None:
    name = "layers/short"
    first, repo = _first_machine_pushes(registry, tiny, tmp_path, name)
    _replace_pack_entry(registry, name, lambda _n, blob: blob[:-1], old_sizes=True)
    work = machine(tmp_path / "two", tiny)
    result = build(work, *PLAIN, *repo, cache=tmp_path / "cache-two")
    out = ok(result)
    assert "its index does not add up to its chunks" in result.stdout + result.stderr, out
    assert "from the cache repository)" not in out
    assert (first / "t.aci").read_bytes() == (work / "t.aci").read_bytes()


def test_editing_a_step_above_leaves_the_image_step_as_it_is(tiny: Tiny, tmp_path: Path) -> None:
    """The list of steps the image step fetches ahead for is a side file, not
    part of its spec: editing a cmd step must not unpack the base again."""
    work = machine(tmp_path / "w", tiny)

    def generate() -> None:
        acigen(work, "--cache-repo", "docker://127.0.0.1:9/cache", "t.json")

    generate()
    above = next((work / ".acigen" / "steps").glob("01-image-*.above.json"))
    spec = above.with_name(above.name.replace(".above.json", ".json"))
    before = (spec.read_bytes(), spec.stat().st_mtime_ns, above.read_text())
    doc = json.loads((work / "t.json").read_text())
    doc[STEPS][1]["args"][-1] += " && echo edited"
    (work / "t.json").write_text(json.dumps(doc, indent=2))
    generate()
    assert (spec.read_bytes(), spec.stat().st_mtime_ns) == before[:2]
    assert above.read_text() != before[2]  # it names the edited step's new file


def test_a_kill_during_the_prefetch_leaves_a_build_that_finishes_the_same(
        registry: Registry, tiny: Tiny, tmp_path: Path) -> None:
    """SIGKILL to the whole build at seeded moments while the image step unpacks
    and fetches ahead; the next `ninja` pulls both layers and makes the same bytes."""
    import os
    import random
    import signal
    import time

    from tests.support.tools import ninja
    repo = ("--cache-repo", registry.ref("layers/killed"))
    ok(build(machine(tmp_path / "one", tiny), *PLAIN, *repo, cache=tmp_path / "cache-one"))
    rng = random.Random(23)
    for run in range(3):
        second = machine(tmp_path / f"two-{run}", tiny)
        cache = tmp_path / f"cache-{run}"
        acigen(second, "--cache-dir", str(cache), *PLAIN, *repo, "t.json")
        proc = subprocess.Popen([ninja(), "t/step-01"], cwd=second, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.6))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        out = run_ninja(second).stdout
        assert out.count("pulled from the layer cache") == 2, out
        assert (tmp_path / "one" / "t.aci").read_bytes() == (second / "t.aci").read_bytes()
        assert not [p for p in (cache / "fetch" / "partial").iterdir()], "a partial download left"
