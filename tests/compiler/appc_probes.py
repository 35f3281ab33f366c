"""Targeted probes for the differential test against appc: one value of
issue 17's classes each, set into a manifest both sides accept (BASE)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "appc_data"
# appc/spec examples/image.json at commit ba99d6b8 (reindented)
SPEC_EXAMPLE = (DATA / "spec-example-image.json").read_text()
HOLE = "@@VECTOR@@"
SHA512 = "sha512-" + "0123456789abcdef" * 8

BASE: dict[str, Any] = {
    "acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/app",
    "labels": [{"name": "version", "value": "1.0.0"}, {"name": "os", "value": "linux"},
               {"name": "arch", "value": "amd64"}],
    "app": {"exec": ["/bin/sh"], "user": "0", "group": "0",
            "environment": [{"name": "PATH", "value": "/bin"}],
            "isolators": [{"name": "resource/memory", "value": {"limit": "1G"}}],
            "mountPoints": [{"name": "data", "path": "/data"}],
            "ports": [{"name": "http", "protocol": "tcp", "port": 80}]},
    "dependencies": [{"imageName": "example.com/base", "imageID": SHA512}],
    "annotations": [{"name": "created", "value": "2016-01-02T15:04:05Z"}],
}


def _s(*texts: str) -> list[str]:
    return [json.dumps(text) for text in texts]


def _iso(name: str, *values: str) -> list[tuple[str, str]]:
    return [("/app/isolators/0", f'{{"name": "{name}", "value": {value}}}') for value in values]


DATES = _s("2016-01-02T15:04:05", "0000-01-01T00:00:00Z", "2016-02-30T00:00:00Z",
           "2016-02-29T00:00:00Z", "2015-02-29T00:00:00Z", "2016-01-02T15:04:05.5+01:00",
           "2016-01-02t15:04:05z", "2016-01-02T5:04:05Z", "2016-01-02T15:04:05,5Z",
           "2016-01-02T15:04:05+99:99", "2016-01-02T24:00:00Z", "2016-01-02T15:04:60Z",
           "\u0662\u0660\u0661\u0666-01-02T15:04:05Z", "2016-01-02 15:04:05Z",
           "2016-01-02T15:04:05Z\n",
           "2016-01-02T15:04:05+0100", "2016-13-02T15:04:05Z", "2016-01-02T15:04:05.Z")
URLS = _s("http://example.com/a b", "http://exa mple.com/", "http://example.com/%zz",
          "http://example.com/\u0001", "http://example.com:80x/", "http://example.com:99999/",
          "http://[::1", "http://[::1]:80/", "http://[zz]/", "HTTP://example.com",
          "http:example", "http://", "https://user:pw@example.com/", "http://example.com/?q=%zz",
          "http://example.com/#a#b", "http://exämple.com/", "ftp://example.com",
          "http://example.com/ä", "http://example.com\n", "https://example.com/docs?x=1#top",
          "http://a%41.com/", "http://example.com/%41")
VERSIONS = _s("0.8.11-rc1", "0.8.11+build.5", "00.8.11", "0.08.11", "+0.8.11", "0.8", "0.0.0",
              "0.0.0-alpha", "1.0.0", "v0.8.11", "0.8.11-", "0.8.11-a..b", "0.8.11\n",
              "\u0660.\u0668.\u0661\u0661", "0.8.\uff11\uff11", "0.8.11-01", "-0.8.11")
NAMES = _s("example.com/app\n", "a--b", "a./b", "a", "A", "-a", "a-", "ä", "a b", "", "a~b_c")
QUANTITIES = ['"1.5Gi"', '"-1"', '" 1"', '"1e3"', '"1e999"', '"abc"', '""', "2", "1.5",
              '"250m"', '"1."', '".5"', '"1E"', '"1e"', "null", "true", '"1Ki"', '"+1"',
              '"1.Ki"', '"1.5Ki"', '"1e99"', '"1E-99"', '"99999999999999999999999Ei"', '"0"',
              '"0.0"', '"000"', '"1e+5"', '"7Pi"', '"1n"', '"1u"', "0", str(2**70)]

PROBES: list[tuple[str, str]] = [
    *[("/annotations/0/value", v) for v in DATES],
    *[("/annotations", f'[{{"name": "homepage", "value": {v}}}]') for v in URLS],
    *[("/acVersion", v) for v in VERSIONS],
    *[("/name", v) for v in NAMES],
    *[("/labels/0/name", v) for v in NAMES],
    *[("/app/environment/0/name", v) for v in _s("A\n", "A", "0A", "A.b-c", "ä")],
    *[("/app/ports/0/name", v) for v in _s("p\n", "p_q", "p")],
    ("/dependencies/0/size", str(2**64)), ("/dependencies/0/size", str(2**64 - 1)),
    ("/dependencies/0/size", "-1"), ("/dependencies/0/size", "0"),
    ("/dependencies/0/size", "1" * 5000), ("/dependencies/0/size", "-0"),
    *[("/app/supplementaryGIDs", f"[{n}]") for n in (2**63, 2**63 - 1, -1, 0)],
    *[("/app/ports/0/port", str(n)) for n in (0, 1, 65535, 65536, -1)],
    *[("/app/ports/0", f'{{"name": "p", "protocol": "tcp", "port": 80, "count": {n}}}')
      for n in (0, 1, 65456, 65457, 2**64 - 1, 2**64 - 80)],
    *[("/dependencies/0/imageID", v) for v in _s(
        "sha512-ABCDEF", "sha512-...", "sha512-", "sha256-abc", "sha512-abc-def", "SHA512-ab")],
    ("/app/exec", "[]"), ("/app/exec", '[""]'), ("/app/exec", '["sh"]'),
    ("/app/eventHandlers", '[{"name": "pre-start", "exec": []}]'),
    ("/app/eventHandlers", '[{"name": "pre-start"}]'),
    ("/app/eventHandlers", '[{"name": "pre-stop", "exec": ["/x"]}]'),
    *[("/labels", v) for v in (
        '[{"name": "os", "value": "darwin"}]', '[{"name": "os", "value": "linux"}]',
        '[{"name": "arch", "value": "amd64"}]', '[]',
        '[{"name": "os", "value": "darwin"}, {"name": "arch", "value": "x86_64"}]',
        '[{"name": "os", "value": "linux"}, {"name": "arch", "value": "arm64"}]',
        '[{"name": "os", "value": "windows"}]', '[{"name": "os"}]',
        '[{"name": "name", "value": "x"}]', '[{"name": "os", "value": null}]',
        '[{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]')],
    *_iso("resource/cpu", '{"default": true}', '{"request": "250m"}', '{"limit": 2}', '{}',
          '{"default": false, "limit": "1"}', '{"bogus": 1}', '"1"', "null"),
    *[iso for q in QUANTITIES for iso in _iso("resource/memory", f'{{"limit": {q}}}')],
    *_iso("resource/block-bandwidth", '{"default": true, "limit": "1M"}', '{"limit": "1M"}',
          '{"default": true, "request": "1M"}'),
    *_iso("resource/block-iops", '{"default": true}'),
    *_iso("resource/network-bandwidth", '{"default": true, "limit": "1G"}'),
    *_iso("os/linux/no-new-privileges", "true", '"true"', "null", "{}"),
    *_iso("os/linux/oom-score-adj", "0", "-1000", "1001", '"5"', "1.0"),
    *_iso("os/linux/cpu-shares", "1", "2", "262144", "262145", str(2**70)),
    *_iso("os/linux/capabilities-retain-set", '{"set": []}', '{"set": ["CAP_X"]}', "{}",
          '{"set": "CAP_X"}'),
    *_iso("os/linux/capabilities-remove-set", '{"set": ["CAP_SYS_ADMIN"]}'),
    *_iso("os/linux/seccomp-retain-set", '{"set": ["read"], "errno": "EPERM"}',
          '{"set": ["read"], "errno": "eperm"}', '{"set": ["read"], "errno": "E"}',
          '{"set": ["read"], "errno": "XPERM"}', '{"set": ["read"], "errno": "EÄ1"}',
          '{"set": []}'),
    *_iso("os/linux/selinux-context",
          '{"user": "u", "role": "r", "type": "t", "level": "s0:c1"}',
          '{"user": "u:x", "role": "r", "type": "t", "level": "s0"}',
          '{"user": "u", "role": "r", "type": "t"}'),
    *_iso("os/unix/sysctl", '{"net.ipv4.ip_forward": "1"}', '{"a": 1}', "{}"),
    *_iso("os/linux/apparmor-profile", '{"name": "x"}'),
    *_iso("os/linux/unknown", "{}"),
    ("/app/isolators/0", '{"name": "os/linux/cpu-shares"}'),
    ("/app/isolators", '[{"name": "os/linux/cpu-shares", "value": 2}, '
                       '{"name": "os/linux/cpu-shares", "value": 3}]'),
    ("/app/isolators", '[{"name": "os/linux/seccomp-retain-set", "value": {"set": ["a"]}}, '
                       '{"name": "os/linux/seccomp-remove-set", "value": {"set": ["b"]}}]'),
    ("/app/isolators", '[{"name": "resource/cpu", "value": {}}, '
                       '{"name": "resource/cpu", "value": {}}]'),
    ("/app/mountPoints", '[{"name": "a", "path": "/a"}, {"name": "a", "path": "/b"}]'),
    ("/app/mountPoints", '[{"name": "a", "path": "rel"}]'),
    ("/app/mountPoints", '[{"name": "a"}]'),
    ("/app/ports", '[{"name": "a", "protocol": "tcp", "port": 1}, '
                   '{"name": "a", "protocol": "udp", "port": 1}]'),
    ("/app/ports", '[{"name": "a", "port": 1}]'),
    ("/app/environment", '[{"name": "A"}]'),
    ("/app/workingDirectory", '""'), ("/app/workingDirectory", '"rel"'),
    ("/pathWhitelist", '["relative"]'),
    ("/labels", "null"), ("/app", "null"), ("/app/user", "null"),
    ("/name", json.dumps("\ud800")), ("/labels/0/value", '"\\ud800"'),
    ("/labels/0/value", '"\\udc00x"'), ("/app/userLabels", '{"\\ud800": "x"}'),
]

WHOLE = [
    '{"acVersion": "0.8.11", "name": "example.com/app"}',
    '{"acKind": "ImageManifest", "name": "example.com/app"}',
    '{"acKind": "PodManifest", "acVersion": "0.8.11", "name": "example.com/app"}',
    '{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "a", "name": "b"}',
    '{"acKind": "ImageManifest", "acVersion": "0.8.11", "Name": "example.com/app"}',
    '{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "a", "extra": 1}',
    '{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "a", "\\ud800": 1}',
    '{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "a", "labels": ['
    + "1" * 4400 + "]}",
    '{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "a", "x": ' + "1" * 4400 + "}",
    '{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "a", "x": '
    + "[" * 1500 + "]" * 1500 + "}",
    '{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "a", "x": "\ud800"}',  # raw
]


def placed(pointer: str, value_text: str, annotation: str | None = None) -> str:
    """BASE's text with the value at POINTER replaced by VALUE_TEXT (raw
    JSON text, so that escapes and long numbers stay as written)."""
    if pointer == "":
        return value_text
    document: Any = json.loads(json.dumps(BASE))
    if annotation:
        document["annotations"][0]["name"] = annotation
    *parents, last = pointer.strip("/").split("/")
    target = document
    for key in parents:
        target = target[int(key) if isinstance(target, list) else key]
    target[int(last) if isinstance(target, list) else last] = HOLE
    return json.dumps(document).replace(json.dumps(HOLE), value_text)


def probes() -> Iterator[dict[str, str]]:
    for pointer, value in PROBES:
        yield {"source": f"probe {pointer} = {value[:60]}", "document": placed(pointer, value)}
    for document in WHOLE:
        yield {"source": f"probe {document[:60]}", "document": document}
