"""The string formats of appc 0.8.11: dates, URLs, semantic versions.

Each check returns None when the text is valid, else what is wrong, as a
phrase that follows the text ("is not ...", "has ..."). They accept a subset
of what appc's Go code accepts, so an image acigen writes always passes
`actool validate`; docs/manifest.md lists where they are stricter, and why.
"""

from __future__ import annotations

import re

# RFC 3339 with a four-digit year (0000 included, as Go's time.Parse has it)
DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
                  r"(?:\.[0-9]+)?(?:Z|[+-]([0-9]{2}):([0-9]{2}))")

# SemVer 2.0; [0-9], not \d, which would take any script's digits
_NUMBER = r"(?:0|[1-9][0-9]*)"
_PRE = r"(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
SEMVER = re.compile(rf"({_NUMBER})\.({_NUMBER})\.({_NUMBER})"
                    rf"(-{_PRE}(?:\.{_PRE})*)?(\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?")

# RFC 3986, the parts an http(s) URL has; each is a subset of what Go's
# net/url.Parse takes (it also takes raw spaces in paths, opaque URLs, ...)
_PCT = r"%[0-9A-Fa-f]{2}"
_UNRESERVED_SUB = r"[A-Za-z0-9._~!$&'()*+,;=-]"
URL = re.compile(rf"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://"
                 rf"(?:(?:{_UNRESERVED_SUB}|:|{_PCT})*@)?"
                 rf"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=-]+)"
                 rf"(?::[0-9]*)?"
                 rf"(?:[/?#](?:[/?#]|{_UNRESERVED_SUB}|[:@]|{_PCT})*)?")


def date_problem(text: str) -> str | None:
    """Why TEXT is not an RFC 3339 date-time, or None."""
    match = DATE.fullmatch(text)
    if not match:
        return "is not an RFC 3339 date"
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not 1 <= month <= 12:
        return "has a month out of range"
    if not 1 <= day <= _days_in(year, month):
        return "has a day out of range"
    if hour > 23 or minute > 59 or second > 59:
        return "has a time of day out of range"
    zone_hour, zone_minute = match.group(7), match.group(8)
    if zone_hour is not None and (int(zone_hour) > 23 or int(zone_minute) > 59):
        return "has a time zone offset out of range"
    return None


def _days_in(year: int, month: int) -> int:
    # calendar wants years 1..9999; 0000 is a leap year like 2000 (proleptic Gregorian)
    import calendar  # rarely needed: not at every start

    return calendar.monthrange(year or 2000, month)[1]


def url_problem(text: str) -> str | None:
    """Why TEXT is not an absolute http(s) URL, or None."""
    match = URL.fullmatch(text)
    if not match:
        return "is not an absolute URL (RFC 3986)"
    if match.group("scheme").lower() not in ("http", "https"):
        return "is not an http(s) URL"
    host = match.group("host")
    if host.startswith("[") and not _ipv6(host[1:-1]):
        return "has a host that is not an IPv6 address"
    return None


def _ipv6(text: str) -> bool:
    import ipaddress  # rarely needed: not at every start

    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def semver_problem(text: str) -> str | None:
    """Why TEXT is not a SemVer 2.0 version appc takes, or None."""
    match = SEMVER.fullmatch(text)
    if not match:
        return "is not a semantic version"
    if text == "0.0.0":  # appc: "SemVer cannot be zero" (0.0.0-rc1 is fine)
        return "is zero, which appc refuses"
    return None
