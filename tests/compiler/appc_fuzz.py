"""Seeded random manifests for the fuzz: appc's vectors, mutated in their
structure (values swapped for hostile ones, keys dropped or added) or in
their bytes. Hostile: lone surrogates, integers past any range (and past
Python's 4300-digit limit), malformed URLs and dates, wrong types."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from typing import Any

HUGE = "@@HUGE@@"  # stands for an integer literal json.dumps could not write
KEYS = ("name", "value", "labels", "app", "exec", "isolators", "default", "limit", "request",
        "set", "errno", "size", "imageID", "port", "count", "protocol", "path", "Name",
        "annotations", "acVersion", "acKind", "os", "arch", "supplementaryGIDs")
HOSTILE: tuple[Any, ...] = (
    "\ud800", "x\udfff", "\udc00\ud800", HUGE, 10**30, -(10**30), 2**63, 2**64, -1, 0, 1,
    65535, 65536, 262145, -1001, 1.5, 1e308, True, False, None, [], {}, "",
    "http://[::1", "http://[::1]:8080/x", "http://exa mple.com/", "https://example.com/a%zz",
    "https://example.com/", "HTTPS://EXAMPLE.COM", "http://host:99x/", "http:opaque",
    "2016-01-02T15:04:05Z", "2016-01-02T15:04:05", "0000-02-29T00:00:00Z", "2016-02-30T00:00:00Z",
    "2016-01-02T15:04:05.999-07:00", "a\n", "\u0661.0.0", "0.8.11", "0.0.0", "1.0.0",
    "sha512-ABCdef", "sha512-", "sha512-a-b", "linux", "darwin", "freebsd", "amd64", "x86_64",
    "arm", "resource/cpu", "resource/memory", "os/linux/cpu-shares", "os/unix/sysctl",
    "os/linux/no-new-privileges", "os/linux/seccomp-retain-set", "pre-start", "tcp",
    "/abs", "rel", "example.com/ok", "a--b", "-a", "A", "1Gi", "250m", "1e3", "EPERM",
    {"default": True}, {"default": False, "limit": "1G"}, {"set": []}, {"set": ["CAP_X"]},
    {"limit": HUGE}, [HUGE], ["/bin/sh"], [""], {"name": "os", "value": "linux"},
)
CHARS = "az09-._~/ :%[]@#?\n\t\"\\\u0660\u00e4\ud800\U0001f600"


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 12)))


def random_value(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.7:
        return copy.deepcopy(rng.choice(HOSTILE))  # shared, it could become a cycle
    if roll < 0.85:
        return random_text(rng)
    return {rng.choice(KEYS): random_value(rng)} if rng.random() < 0.5 else [random_value(rng)]


def containers(value: Any) -> list[Any]:
    """Every object and list inside VALUE, VALUE included."""
    found = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (dict, list)):
            found.append(item)
            stack.extend(item.values() if isinstance(item, dict) else item)
    return found


def mutate(document: Any, rng: random.Random) -> None:
    """Change DOCUMENT in place: a value replaced, a key removed or added."""
    target = rng.choice(containers(document))
    if isinstance(target, list):
        if target and rng.random() < 0.7:
            target[rng.randrange(len(target))] = random_value(rng)
        else:
            target.append(random_value(rng))
        return
    roll = rng.random()
    if target and roll < 0.6:
        target[rng.choice(list(target))] = random_value(rng)
    elif target and roll < 0.8:
        del target[rng.choice(list(target))]
    else:
        target[rng.choice((*KEYS, random_text(rng)))] = random_value(rng)


def serialize(document: Any, rng: random.Random) -> bytes:
    text = json.dumps(document, ensure_ascii=rng.random() < 0.8)
    digits = "9" * rng.choice((25, 4300, 4301, 5000))
    return text.replace(json.dumps(HUGE), digits).encode("utf-8", "surrogatepass")


def garble(data: bytes, rng: random.Random) -> bytes:
    """DATA with a few bytes changed, dropped or inserted."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        where = rng.randrange(len(buffer) + 1)
        choice = rng.random()
        if choice < 0.4 and where < len(buffer):
            buffer[where] = rng.randrange(256)
        elif choice < 0.7 and where < len(buffer):
            del buffer[where]
        else:
            buffer[where:where] = rng.choice((b"\\ud800", b'"', b",", b"}", b"\xff", b"-0"))
    return bytes(buffer)


def fuzz_documents(seeds: list[bytes], count: int, seed: int = 17) -> Iterator[bytes]:
    rng = random.Random(seed)
    parsed = []
    for data in seeds:
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            parsed.append(value)
    for _ in range(count):
        document = json.loads(json.dumps(rng.choice(parsed)))
        for _ in range(rng.randint(1, 3)):
            mutate(document, rng)
        data = serialize(document, rng)
        yield garble(data, rng) if rng.random() < 0.15 else data
