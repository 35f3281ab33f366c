"""A client of the OCI distribution spec, on requests: what pull and push need.

Authentication as registries ask for it: a 401 names Basic (credentials sent
as they are) or Bearer (a token fetched from the realm it names, with the
credentials, for this repository's scope), then the request is made again.
Every failure is one line naming the registry and what went wrong.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import requests

from acigen.errors import HelperError
from acigen.helpers.registry.auth import Settings, credentials
from acigen.imageref import Reference

TIMEOUT = (15, 120)  # connect, read
MANIFEST_MAX = 4 << 20  # the distribution spec's limit for a manifest
ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class Client:
    """One repository in one registry."""

    def __init__(self, ref: Reference, settings: Settings, push: bool = False) -> None:
        self.ref = ref
        self.settings = settings
        self.scope = f"repository:{ref.name}:{'pull,push' if push else 'pull'}"
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "acigen"
        self.scheme = "https"
        self._auth_header: str | None = None
        self._tried_plain = False

    # -- requests -------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.ref.host}/v2/{self.ref.name}/{path}"

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """METHOD URL, authenticating when the registry asks."""
        response = self._send(method, url, **kwargs)
        if response.status_code == 401 and self._authenticate(response):
            response.close()
            response = self._send(method, url, **kwargs)
        if response.status_code == 401:
            response.close()
            raise HelperError(self._denied())
        return response

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self._auth_header:
            headers["Authorization"] = self._auth_header
        if url.startswith("https://") and self.scheme == "http":
            url = "http://" + url[len("https://"):]
        try:
            return self.session.request(method, url, headers=headers, timeout=TIMEOUT,
                                        verify=self.settings.verify(), **kwargs)
        except requests.exceptions.SSLError as exc:
            if not self.settings.tls_verify and self._plain_http():
                return self._send(method, url, headers=headers, **kwargs)
            raise HelperError(f"{self.ref.host}: TLS failed: {_reason(exc)}",
                              hint="give the registry's CA with --ca-bundle FILE, or "
                                   "--tls-verify=false to skip the check") from None
        except requests.exceptions.ConnectionError as exc:
            if not self.settings.tls_verify and self._plain_http():
                return self._send(method, url, headers=headers, **kwargs)
            raise HelperError(f"cannot reach the registry {self.ref.host}: "
                              f"{_reason(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise HelperError(f"{self.ref.host}: {_reason(exc)}") from None

    def _plain_http(self) -> bool:
        """With --tls-verify=false, a registry without TLS is tried over HTTP, once."""
        if self._tried_plain or self.scheme == "http":
            return False
        self._tried_plain = True
        self.scheme = "http"
        return True

    def _denied(self) -> str:
        found = credentials(self.ref.host, self.settings)
        if found is None:
            return (f"{self.ref.host}: the registry asks for credentials and no auth file "
                    f"names it (looked for $REGISTRY_AUTH_FILE, containers auth.json, "
                    f"~/.docker/config.json)")
        return f"{self.ref.host}: the registry refused the credentials from {found[1]}"

    def _authenticate(self, response: requests.Response) -> bool:
        challenge = response.headers.get("WWW-Authenticate", "")
        kind = challenge.split(" ", 1)[0].lower()
        found = credentials(self.ref.host, self.settings)
        if kind == "basic":
            if found is None or self._auth_header:
                return False
            user, password = found[0]
            self._auth_header = "Basic " + base64.b64encode(
                f"{user}:{password}".encode()).decode()
            return True
        if kind == "bearer":  # a new token each time: the last one may have expired
            params = dict(_CHALLENGE.findall(challenge))
            self._auth_header = "Bearer " + self._token(params, found)
            return True
        return False

    def _token(self, params: dict[str, str], found: tuple[tuple[str, str], str] | None) -> str:
        realm = params.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise HelperError(f"{self.ref.host}: a bearer challenge without a usable realm")
        query = {"scope": self.scope}  # ours: a push's token must allow pushing too
        if "service" in params:
            query["service"] = params["service"]
        try:
            answer = self.session.get(realm, params=query, auth=found[0] if found else None,
                                      timeout=TIMEOUT, verify=self.settings.verify())
        except requests.exceptions.RequestException as exc:
            raise HelperError(f"{self.ref.host}: cannot get a token from {realm}: "
                              f"{_reason(exc)}") from None
        if answer.status_code in (401, 403):
            raise HelperError(self._denied())
        try:
            body = answer.json()
            token = body.get("token") or body.get("access_token")
        except ValueError:
            token = None
        if answer.status_code != 200 or not isinstance(token, str):
            raise HelperError(f"{self.ref.host}: the token server {realm} answered "
                              f"{answer.status_code} without a token")
        return token

    def fail(self, response: requests.Response, what: str) -> HelperError:
        codes = _error_codes(response)
        response.close()
        detail = f" ({codes})" if codes else ""
        return HelperError(f"{self.ref.host}: {what}: HTTP {response.status_code}{detail}")

    # -- manifests ---------------------------------------------------------------

    def manifest(self, reference: str) -> tuple[bytes, str]:
        """The manifest (or index) REFERENCE names, as the registry sent its bytes,
        and its media type."""
        response = self.request("GET", self.url(f"manifests/{reference}"),
                                headers={"Accept": ACCEPT}, stream=True)
        if response.status_code == 404:
            response.close()
            raise HelperError(f"{self.ref}: no such image in {self.ref.host} "
                              f"({self.ref.name}:{reference} is not there)")
        if response.status_code != 200:
            raise self.fail(response, f"cannot get the manifest of {self.ref}")
        body = _read_limited(response, MANIFEST_MAX, f"{self.ref}: the manifest")
        media = response.headers.get("Content-Type", "").split(";")[0].strip()
        return body, media

    def put_manifest(self, reference: str, body: bytes, media: str) -> str:
        response = self.request("PUT", self.url(f"manifests/{reference}"), data=body,
                                headers={"Content-Type": media})
        if response.status_code not in (200, 201, 202):
            raise self.fail(response, f"pushing the manifest of {self.ref} failed")
        response.close()
        return "sha256:" + hashlib.sha256(body).hexdigest()

    # -- blobs -------------------------------------------------------------------

    def blob_into(self, digest: str, out: BinaryIO, limit: int) -> None:
        """Write blob DIGEST (at most LIMIT bytes) to OUT; the caller checks it."""
        response = self.request("GET", self.url(f"blobs/{digest}"), stream=True)
        if response.status_code != 200:
            raise self.fail(response, f"cannot get blob {digest} of {self.ref.name}")
        total = 0
        with response:
            for chunk in _chunks(response):
                total += len(chunk)
                if total > limit:
                    raise HelperError(f"{self.ref}: blob {digest} is larger than its "
                                      f"manifest says ({limit} bytes)")
                out.write(chunk)

    def has_blob(self, digest: str) -> bool:
        response = self.request("HEAD", self.url(f"blobs/{digest}"))
        response.close()
        if response.status_code in (200, 404):
            return response.status_code == 200
        raise self.fail(response, f"cannot ask for blob {digest}")

    def upload_blob(self, digest: str, data: BinaryIO, size: int) -> None:
        """A monolithic upload: POST for a session, PUT the bytes with the digest."""
        started = self.request("POST", self.url("blobs/uploads/"))
        if started.status_code != 202 or "Location" not in started.headers:
            raise self.fail(started, f"cannot start uploading blob {digest}")
        started.close()
        location = requests.compat.urljoin(self.url(""), started.headers["Location"])
        separator = "&" if "?" in location else "?"
        done = self.request("PUT", f"{location}{separator}digest={digest}", data=data,
                            headers={"Content-Type": "application/octet-stream",
                                     "Content-Length": str(size)})
        if done.status_code != 201:
            raise self.fail(done, f"uploading blob {digest} failed")
        done.close()


def _chunks(response: requests.Response) -> Iterator[bytes]:
    try:
        yield from response.iter_content(1 << 20)
    except requests.exceptions.RequestException as exc:
        raise HelperError(f"{response.url}: the download broke off: {_reason(exc)}") from None


def _read_limited(response: requests.Response, limit: int, what: str) -> bytes:
    parts, total = [], 0
    with response:
        for chunk in _chunks(response):
            total += len(chunk)
            if total > limit:
                raise HelperError(f"{what} is larger than {limit} bytes")
            parts.append(chunk)
    return b"".join(parts)


def _error_codes(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors", [])
        return ", ".join(str(e.get("code")) for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError):
        return ""


def _reason(exc: BaseException) -> str:
    """The innermost reason of a requests exception, on one line."""
    text = str(exc)
    for pattern in (r"\[SSL: [^\]]+\] ([^(]+)", r"(Connection refused)",
                    r"(Name or service not known)", r"(timed out)"):
        found = re.search(pattern, text)
        if found:
            return found.group(1).strip()
    return " ".join(text.split())[:200]

