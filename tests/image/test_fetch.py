"""acigen-fetch against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acigen.errors import HelperError
from acigen.helpers.fetch import download
from acigen.helpers.fetch.cache import Cache, Digests
from acigen.helpers.fetch.obtain import fetch
from acigen.specs import FetchSpec
from tests.image.conftest import REPO, error_lines, run_helper, sha256, write_spec
from tests.support.httpserver import FileServer, Resource

BODY = os.urandom(300_000)
DIGEST = sha256(BODY)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def fetch_cli(spec: Path, build: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    ref = build / ".acigen" / "fetch" / "x.ref"
    ref.parent.mkdir(parents=True, exist_ok=True)
    return run_helper("fetch", "--spec", str(spec), "--ref", str(ref), cwd=build), ref


def cached_objects(cache: Path) -> list[str]:
    folder = cache / "fetch" / "sha256"
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_pinned_fetch_then_none_at_all(server: FileServer, cache: Path, tmp_path: Path) -> None:
    url = server.add("/a.tar", Resource(BODY, etag='"a1"'))
    spec = write_spec(tmp_path / "spec.json", url=url, sha256=DIGEST, cache_dir=str(cache))
    result, ref = fetch_cli(spec, tmp_path / "build1")
    assert result.returncode == 0, result.stderr
    assert "downloaded" in result.stdout and DIGEST in result.stdout
    data = json.loads(ref.read_text())
    assert data["sha256"] == DIGEST and Path(data["path"]).read_bytes() == BODY
    # a new build directory: the pinned file comes from the cache, no request
    again, ref2 = fetch_cli(spec, tmp_path / "build2")
    assert again.returncode == 0, again.stderr
    assert "cached" in again.stdout
    assert len(server.requests) == 1
    assert ref2.read_text() == ref.read_text()


def test_ref_is_not_rewritten_when_unchanged(server: FileServer, cache: Path,
                                             tmp_path: Path) -> None:
    """So that ninja's restat skips the unpack."""
    url = server.add("/a.tar", Resource(BODY, etag='"a1"'))
    spec = write_spec(tmp_path / "spec.json", url=url, sha256=DIGEST, cache_dir=str(cache))
    _, ref = fetch_cli(spec, tmp_path / "build")
    os.utime(ref, ns=(1_000_000_000, 1_000_000_000))
    result, _ = fetch_cli(spec, tmp_path / "build")
    assert result.returncode == 0
    assert ref.stat().st_mtime_ns == 1_000_000_000


def test_wrong_pin_keeps_nothing(server: FileServer, cache: Path, tmp_path: Path) -> None:
    url = server.add("/a.tar", Resource(BODY))
    wrong = sha256(b"something else")
    spec = write_spec(tmp_path / "spec.json", url=url, sha256=wrong, cache_dir=str(cache))
    result, ref = fetch_cli(spec, tmp_path / "build")
    assert result.returncode == 1
    line = error_lines(result)[0]
    assert line.startswith("acigen-fetch: error: ") and wrong in line and DIGEST in line
    assert not ref.exists()
    assert cached_objects(cache) == []
    assert os.listdir(cache / "fetch" / "partial") == []


@pytest.mark.parametrize("status", [404, 403])
def test_client_errors_stop_at_once(server: FileServer, cache: Path, tmp_path: Path,
                                    status: int) -> None:
    url = server.add("/a.tar", Resource(BODY, status=status))
    spec = write_spec(tmp_path / "spec.json", url=url, cache_dir=str(cache))
    result, ref = fetch_cli(spec, tmp_path / "build")
    assert result.returncode == 1
    assert error_lines(result)[0] == f"acigen-fetch: error: {url}: HTTP {status} " + \
        {404: "Not Found", 403: "Forbidden"}[status]
    assert len(server.requests) == 1 and not ref.exists()


def test_server_errors_are_retried(server: FileServer, cache: Path, tmp_path: Path) -> None:
    url = server.add("/a.tar", Resource(BODY, first_statuses=[500, 503]))
    spec = write_spec(tmp_path / "spec.json", url=url, sha256=DIGEST, cache_dir=str(cache))
    result, ref = fetch_cli(spec, tmp_path / "build")
    assert result.returncode == 0, result.stderr
    assert [seen.status for seen in server.requests] == [500, 503, 200]
    assert "after 2 retries" in result.stdout
    assert Path(json.loads(ref.read_text())["path"]).read_bytes() == BODY


def test_dropped_connection_resumes_with_range(server: FileServer, cache: Path,
                                              tmp_path: Path) -> None:
    url = server.add("/a.tar", Resource(BODY, etag='"v7"', drop_after=100_000, drops=1))
    spec = write_spec(tmp_path / "spec.json", url=url, sha256=DIGEST, cache_dir=str(cache))
    result, ref = fetch_cli(spec, tmp_path / "build")
    assert result.returncode == 0, result.stderr
    first, second = server.requests
    assert first.sent == 100_000
    assert second.headers.get("Range") == "bytes=100000-"
    assert second.headers.get("If-Range") == '"v7"'
    assert second.status == 206 and second.sent == len(BODY) - 100_000
    assert "resumed" in result.stdout
    assert Path(json.loads(ref.read_text())["path"]).read_bytes() == BODY


def test_interrupted_fetch_resumes_in_the_next_run(server: FileServer, cache: Path,
                                                   tmp_path: Path) -> None:
    resource = Resource(BODY, etag='"v1"', rate=100_000)
    url = server.add("/a.tar", resource)
    spec = write_spec(tmp_path / "spec.json", url=url, sha256=DIGEST, cache_dir=str(cache))
    ref = tmp_path / "x.ref"
    proc = subprocess.Popen([sys.executable, "-m", "acigen.helpers.fetch", "--spec", str(spec),
                             "--ref", str(ref)], env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not (server.requests and server.requests[0].sent >= 60_000):
        assert time.monotonic() < deadline, "the download did not start"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert not ref.exists()
    resource.rate = None
    result, ref = fetch_cli(spec, tmp_path / "build")
    assert result.returncode == 0, result.stderr
    resumed = server.requests[-1]
    assert resumed.status == 206
    start = int(resumed.headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert start >= 60_000 and resumed.sent == len(BODY) - start
    assert Path(json.loads(ref.read_text())["path"]).read_bytes() == BODY


def test_unpinned_is_locked_then_revalidated(server: FileServer, cache: Path,
                                             tmp_path: Path) -> None:
    url = server.add("/a.tar", Resource(BODY, etag='"e1"', last_modified=1.7e9))
    lock = tmp_path / "src" / "img.lock.json"
    lock.parent.mkdir()
    spec = write_spec(tmp_path / "spec.json", url=url, locks=[str(lock)], cache_dir=str(cache))
    first, ref = fetch_cli(spec, tmp_path / "build1")
    assert first.returncode == 0, first.stderr
    assert f"sha256 {DIGEST} (recorded in {lock})" in first.stdout
    assert json.loads(lock.read_text())["urls"] == {url: {"sha256": DIGEST}}
    second, ref2 = fetch_cli(spec, tmp_path / "build2")
    assert second.returncode == 0, second.stderr
    assert "not modified" in second.stdout
    assert len(server.requests) == 2
    revalidation = server.requests[1]
    assert revalidation.headers.get("If-None-Match") == '"e1"'
    assert revalidation.status == 304 and revalidation.sent == 0
    assert ref2.read_text() == ref.read_text()


def test_upstream_change_against_the_lock_is_an_error(server: FileServer, cache: Path,
                                                      tmp_path: Path) -> None:
    resource = Resource(BODY, etag='"e1"')
    url = server.add("/a.tar", resource)
    lock = tmp_path / "img.lock.json"
    spec = write_spec(tmp_path / "spec.json", url=url, locks=[str(lock)], cache_dir=str(cache))
    assert fetch_cli(spec, tmp_path / "build")[0].returncode == 0
    recorded = lock.read_text()
    resource.body, resource.etag = b"new upstream" * 1000, '"e2"'
    result, _ = fetch_cli(spec, tmp_path / "build")
    assert result.returncode == 1
    line, hint = error_lines(result)
    assert DIGEST in line and sha256(resource.body) in line
    assert "delete its entry" in hint
    assert lock.read_text() == recorded
    assert cached_objects(cache) == [DIGEST]


def test_every_lock_file_records_and_all_must_agree(server: FileServer, cache: Path,
                                                    tmp_path: Path) -> None:
    url = server.add("/a.tar", Resource(BODY, etag='"e1"'))
    one, two = tmp_path / "one.lock.json", tmp_path / "two.lock.json"
    spec = write_spec(tmp_path / "spec.json", url=url, locks=[str(one), str(two)],
                      cache_dir=str(cache))
    result, _ = fetch_cli(spec, tmp_path / "build")
    assert result.returncode == 0, result.stderr
    assert f"(recorded in {one}, {two})" in result.stdout
    assert one.read_text() == two.read_text()
    # a third manifest joins: checked against the others, then recorded
    three = tmp_path / "three.lock.json"
    spec = write_spec(tmp_path / "spec.json", url=url, locks=[str(one), str(three)],
                      cache_dir=str(cache))
    result, _ = fetch_cli(spec, tmp_path / "build")
    assert result.returncode == 0 and f"(recorded in {three})" in result.stdout
    # lock files that disagree stop the fetch, naming each and its digest
    other = "0" * 64
    three.write_text(json.dumps({"acigen-lock": 1, "urls": {url: {"sha256": other}}}))
    result, _ = fetch_cli(spec, tmp_path / "build")
    assert result.returncode == 1
    line, hint = error_lines(result)
    assert line.endswith(f"{url}: the lock files disagree: {one} records sha256 {DIGEST}; "
                         f"{three} records sha256 {other}")
    assert "delete the stale entry" in hint


def test_offline(server: FileServer, cache: Path, tmp_path: Path) -> None:
    url = server.add("/a.tar", Resource(BODY))
    offline = write_spec(tmp_path / "off.json", url=url, sha256=DIGEST, offline=True,
                         cache_dir=str(cache))
    result, ref = fetch_cli(offline, tmp_path / "build")
    assert result.returncode == 1
    assert "is not in the download cache" in error_lines(result)[0]
    assert server.requests == [] and not ref.exists()
    online = write_spec(tmp_path / "on.json", url=url, sha256=DIGEST, cache_dir=str(cache))
    assert fetch_cli(online, tmp_path / "build")[0].returncode == 0
    result, ref = fetch_cli(offline, tmp_path / "build2")
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 1  # only the online fetch asked the server
    assert json.loads(ref.read_text())["sha256"] == DIGEST


def start_fetch(spec: Path, ref: Path) -> subprocess.Popen[bytes]:
    """The fetch helper as ninja runs it, in the background."""
    return subprocess.Popen([sys.executable, "-m", "acigen.helpers.fetch", "--spec", str(spec),
                             "--ref", str(ref)], env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """Every process ended with 0; on a failure the others are stopped, so
    none outlives the test."""
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def test_two_urls_download_at_the_same_time(server: FileServer, cache: Path,
                                            tmp_path: Path) -> None:
    """Two processes, two URLs: the server sees both requests open at once."""
    procs = []
    for name in ("a", "b"):
        url = server.add(f"/{name}.tar", Resource(BODY, rate=200_000))
        spec = write_spec(tmp_path / f"{name}.json", url=url, sha256=DIGEST,
                          cache_dir=str(cache))
        procs.append(start_fetch(spec, tmp_path / f"{name}.ref"))
    wait_all(procs)
    assert server.max_active == 2


STORE_ROUNDS = 300


def digests_of_bytes(data: bytes) -> Digests:
    return Digests(hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest(),
                   len(data))


def store_the_same_file_again_and_again(cache_dir: str, name: str) -> None:
    """What two fetches of one file under two URLs do at their end, many times."""
    cache = Cache(cache_dir)
    digests = digests_of_bytes(BODY)
    for round_ in range(STORE_ROUNDS):
        partial = os.path.join(cache.root, "partial", f"{name}-{round_}")
        Path(partial).write_bytes(BODY)
        cache.store(partial, digests)


def test_two_fetches_storing_one_file_never_trip_on_each_other(tmp_path: Path) -> None:
    """The same download under two URLs, stored by two processes at once:
    each store must survive the other replacing the file under its name
    (link() of a file whose last name was just replaced fails with ENOENT)."""
    import multiprocessing
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=store_the_same_file_again_and_again,
                               args=(str(tmp_path), name)) for name in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    cache = Cache(str(tmp_path))
    digests = digests_of_bytes(BODY)
    assert cache.checked("sha256", digests.sha256) == digests
    assert cache.checked("sha512", digests.sha512) == digests
    assert not [name for name in os.listdir(os.path.join(cache.root, "sha512"))
                if ".tmp-" in name]


def test_same_url_from_two_builds_is_fetched_once(server: FileServer, cache: Path,
                                                  tmp_path: Path) -> None:
    url = server.add("/a.tar", Resource(BODY, rate=300_000))
    spec = write_spec(tmp_path / "spec.json", url=url, sha256=DIGEST, cache_dir=str(cache))
    procs = [subprocess.Popen(
        [sys.executable, "-m", "acigen.helpers.fetch", "--spec", str(spec), "--ref",
         str(tmp_path / f"{n}.ref")], env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for n in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert len(server.requests) == 1
    assert (tmp_path / "0.ref").read_text() == (tmp_path / "1.ref").read_text()


def test_file_urls_are_verified_and_cached(cache: Path, tmp_path: Path) -> None:
    source = tmp_path / "rootfs.tar"
    source.write_bytes(BODY)
    lock = tmp_path / "img.lock.json"
    spec = write_spec(tmp_path / "spec.json", url=source.as_uri(), locks=[str(lock)],
                      cache_dir=str(cache))
    result, _ = fetch_cli(spec, tmp_path / "build")
    assert result.returncode == 0, result.stderr
    assert cached_objects(cache) == [DIGEST]
    again, _ = fetch_cli(spec, tmp_path / "build")
    assert "not modified" in again.stdout
    source.write_bytes(BODY[:1000])
    changed, _ = fetch_cli(spec, tmp_path / "build")
    assert changed.returncode == 1 and DIGEST in error_lines(changed)[0]


def test_tls_failure_is_one_line(cache: Path, tmp_path: Path) -> None:
    import ssl
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with FileServer(tls=context) as tls_server:
        url = tls_server.add("/a.tar", Resource(BODY))
        spec = write_spec(tmp_path / "spec.json", url=url, sha256=DIGEST, cache_dir=str(cache))
        result, _ = fetch_cli(spec, tmp_path / "build")
    assert result.returncode == 1
    line = error_lines(result)[0]
    assert line.startswith(f"acigen-fetch: error: {url}: TLS error: ")
    assert "CERTIFICATE_VERIFY_FAILED" in line or "certificate verify failed" in line


def test_refused_connection_is_retried_then_reported(cache: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(download, "BACKOFF", 0.01)
    spec = FetchSpec(f"http://127.0.0.1:{port}/a.tar", cache_dir=str(cache))
    with pytest.raises(HelperError, match=r"cannot connect to 127\.0\.0\.1: .*refused.*"
                       rf"gave up after {download.ATTEMPTS} attempts"):
        fetch(spec)


def test_bad_spec_is_a_clear_error(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.json", url="ftp://example.invalid/x.tar")
    result, _ = fetch_cli(spec, tmp_path)
    assert result.returncode == 1
    assert "unsupported URL scheme" in error_lines(result)[0]


def test_concurrent_fetches_record_into_one_lock_file(server: FileServer, cache: Path,
                                                      tmp_path: Path) -> None:
    lock = tmp_path / "img.lock.json"
    bodies = {name: os.urandom(50_000) for name in "abcd"}
    procs = []
    for name, body in bodies.items():
        url = server.add(f"/{name}.tar", Resource(body, rate=100_000))
        spec = write_spec(tmp_path / f"{name}.json", url=url, locks=[str(lock)],
                          cache_dir=str(cache))
        procs.append(start_fetch(spec, tmp_path / f"{name}.ref"))
    wait_all(procs)
    assert server.max_active >= 2  # they did overlap
    recorded = json.loads(lock.read_text())["urls"]
    assert recorded == {server.url(f"/{name}.tar"): {"sha256": sha256(body)}
                        for name, body in bodies.items()}


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


@pytest.mark.parametrize("pin", ["sha256", "sha512", None])
def test_a_damaged_cache_entry_is_dropped_and_fetched_again(
        server: FileServer, cache: Path, tmp_path: Path, pin: str | None) -> None:
    url = server.add("/a.tar", Resource(BODY, etag='"a1"'))
    pins = {pin: hashlib.new(pin, BODY).hexdigest()} if pin else {}
    spec = write_spec(tmp_path / "spec.json", url=url, cache_dir=str(cache), **pins)
    assert fetch_cli(spec, tmp_path / "build")[0].returncode == 0
    truncate(cache / "fetch" / "sha256" / DIGEST)  # its sha512/ name is the same file
    result, ref = fetch_cli(spec, tmp_path / "build")
    assert result.returncode == 0, result.stderr
    assert "downloaded" in result.stdout and len(server.requests) == 2
    sha512 = hashlib.sha512(BODY).hexdigest()
    for name in (f"sha256/{DIGEST}", f"sha512/{sha512}"):
        assert (cache / "fetch" / name).read_bytes() == BODY, name
    assert json.loads(ref.read_text())["sha256"] == DIGEST


def test_a_damaged_cache_entry_offline_is_one_line(server: FileServer, cache: Path,
                                                   tmp_path: Path) -> None:
    url = server.add("/a.tar", Resource(BODY))
    online = write_spec(tmp_path / "on.json", url=url, sha256=DIGEST, cache_dir=str(cache))
    assert fetch_cli(online, tmp_path / "build")[0].returncode == 0
    truncate(cache / "fetch" / "sha256" / DIGEST)
    offline = write_spec(tmp_path / "off.json", url=url, sha256=DIGEST, offline=True,
                         cache_dir=str(cache))
    result, _ = fetch_cli(offline, tmp_path / "build")
    assert result.returncode == 1
    line = error_lines(result)[0]
    assert f"the cached copy {cache}/fetch/sha256/{DIGEST} was damaged" in line, line
    assert len(server.requests) == 1
