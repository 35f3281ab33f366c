"""Download one URL over HTTP(S) into the cache's partial file.

requests with a Session, streamed to disk; a connect and a read timeout;
retries with exponential backoff on connection errors, timeouts and 5xx /
429 answers (the count restarts whenever bytes arrived); an interrupted
download resumes (Range + If-Range) when the server named a validator, in
this run or the next; conditional requests (If-None-Match /
If-Modified-Since) when a copy is cached.  Permanent failures (404, 403,
an unknown host, a TLS error) stop at once with one line.

Certificates are checked against certifi's bundle, or the one named by
REQUESTS_CA_BUNDLE; proxies come from the usual environment variables.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from acigen.errors import HelperError
from acigen.helpers.fetch.cache import Cache

CONNECT_TIMEOUT = 20.0
READ_TIMEOUT = 60.0
ATTEMPTS = 5  # consecutive failed attempts, without progress, before giving up
BACKOFF = 0.5  # seconds before the first retry; doubled each time
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass
class Outcome:
    modified: bool  # False: the server said 304, the cached copy is current
    validators: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    resumed: bool = False


class _Transient(Exception):
    def __init__(self, message: str, progress: bool = False) -> None:
        super().__init__(message)
        self.progress = progress


def _validators(headers: Any) -> dict[str, str]:
    found = {}
    if headers.get("ETag"):
        found["etag"] = headers["ETag"]
    if headers.get("Last-Modified"):
        found["last_modified"] = headers["Last-Modified"]
    return found


def _if_range(validators: dict[str, str]) -> str | None:
    """If-Range needs a strong ETag, or else a date."""
    etag = validators.get("etag", "")
    if etag and not etag.startswith("W/"):
        return etag
    return validators.get("last_modified")


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost reason behind requests' and urllib3's wrappers."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException) and exc.args \
                and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        if not isinstance(inner, BaseException):
            inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def _connection_failure(url: str, exc: Exception) -> Exception:
    """A one-line error for a failed connection: permanent or transient."""
    host = urlsplit(url).hostname
    cause = _root_cause(exc)
    if isinstance(exc, requests.exceptions.SSLError) or isinstance(cause, ssl.SSLError):
        return HelperError(f"{url}: TLS error: {getattr(cause, 'reason', None) or cause}",
                           hint="REQUESTS_CA_BUNDLE names the CA bundle to trust")
    if isinstance(cause, (socket.gaierror, urllib3.exceptions.NameResolutionError)):
        return HelperError(f"{url}: cannot resolve host {host!r}")
    if isinstance(exc, requests.exceptions.Timeout):
        return _Transient(f"timed out connecting to {host}")
    return _Transient(f"cannot connect to {host}: {getattr(cause, 'strerror', None) or cause}")


def download(url: str, cache: Cache, cached: dict[str, str] | None) -> Outcome:
    """Bring URL's content into cache.partial(URL), completely; with CACHED
    validators of a copy we hold, a 304 answer returns modified=False."""
    session = requests.Session()
    session.headers.update({"User-Agent": "acigen-fetch", "Accept-Encoding": "identity"})
    failures = retries = 0
    with session:
        while True:
            try:
                outcome = _attempt(session, url, cache, cached)
                outcome.retries = retries
                return outcome
            except _Transient as exc:
                failures = 1 if exc.progress else failures + 1
                if failures >= ATTEMPTS:
                    raise HelperError(f"{url}: {exc} (gave up after {failures} attempts "
                                      "in a row)") from None
                retries += 1
                time.sleep(BACKOFF * 2 ** (failures - 1))


def _attempt(session: requests.Session, url: str, cache: Cache,
             cached: dict[str, str] | None) -> Outcome:
    partial = cache.partial(url)
    resume_from = _resumable(cache, url)
    headers = {}
    if resume_from:
        headers["Range"] = f"bytes={resume_from}-"
        headers["If-Range"] = _if_range(cache.partial_meta(url) or {}) or ""
    if cached:
        if cached.get("etag"):
            headers["If-None-Match"] = cached["etag"]
        if cached.get("last_modified"):
            headers["If-Modified-Since"] = cached["last_modified"]
    try:
        response = session.get(url, headers=headers, stream=True,
                               timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise _connection_failure(url, exc) from None
    with response:
        status = response.status_code
        if status == 304 and cached:
            return Outcome(modified=False, validators=cached)
        if status in RETRY_STATUSES:
            raise _Transient(f"HTTP {status} {response.reason}")
        if status == 416:
            cache.drop_partial(url)  # what we hold is not a prefix of the file any more
            raise _Transient("HTTP 416: the partial download is stale; starting over")
        if status not in (200, 206):
            raise HelperError(f"{url}: HTTP {status} {response.reason}")
        start = _start_offset(response, resume_from)
        if start is None:
            cache.drop_partial(url)
            raise _Transient("the server answered a different range; starting over")
        validators = _validators(response.headers)
        if start == 0:
            cache.set_partial_meta(url, validators)
        _receive(response, partial, start)
        return Outcome(modified=True, validators=validators, resumed=start > 0)


def _resumable(cache: Cache, url: str) -> int:
    meta = cache.partial_meta(url)
    try:
        size = os.path.getsize(cache.partial(url))
    except FileNotFoundError:
        return 0
    return size if meta and _if_range(meta) else 0


def _start_offset(response: requests.Response, resume_from: int) -> int | None:
    """Where the body goes in the partial file: 0 unless a 206; None for a
    206 that does not continue what we hold."""
    if response.status_code != 206:
        return 0
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if not match or int(match.group(1)) != resume_from:
        return None
    return resume_from


def _receive(response: requests.Response, partial: str, start: int) -> None:
    expected = response.headers.get("Content-Length")
    received = 0
    with open(partial, "r+b" if start else "wb") as out:
        out.seek(start)
        out.truncate()
        # read1 (urllib3 >= 2): what has arrived, so that an interruption loses little
        read = getattr(response.raw, "read1", None) or (lambda n, **kw: response.raw.read(
            min(n, 65536), **kw))
        while True:
            try:
                chunk = read(_CHUNK, decode_content=False)
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                    OSError) as exc:
                raise _Transient(f"the connection broke after {start + received} bytes "
                                 f"({type(_root_cause(exc)).__name__})",
                                 progress=received > 0) from None
            if not chunk:
                break
            try:
                out.write(chunk)
            except OSError as exc:  # a full disk is not worth retrying
                raise HelperError(f"cannot write {partial}: {exc.strerror}") from None
            received += len(chunk)
    if expected is not None and expected.isdigit() and received != int(expected):
        raise _Transient(f"received {received} of {expected} bytes", progress=received > 0)
