"""URL checks modelled on Telegram's link validation (text links and URL buttons)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):(//)?")
_HTTP_SCHEMES = frozenset({"http", "https"})
_TG_SCHEMES = frozenset({"tg", "ton", "tonsite"})
_IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9_\-\u0080-\U0010ffff]+$")
_TLD_RE = re.compile(r"^([A-Za-z\u0080-\U0010ffff]{2,}|xn--[A-Za-z0-9\-]+)$")


class UrlError(ValueError):
    """A URL Telegram would reject; ``reason`` is Telegram's wording (e.g. "Wrong HTTP URL")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_url(url: str) -> str:
    """Validate ``url`` like Telegram does for links and buttons and return its normal form.

    Bare domains get ``http://``; an empty path becomes ``/``. ``tg://``, ``ton://`` and
    ``tonsite://`` links are accepted as they are. Raises :class:`UrlError` otherwise.
    """
    if url == "":
        raise UrlError("URL host is empty")
    if any(ch.isspace() for ch in url):
        raise UrlError("Wrong HTTP URL")
    scheme, rest = _split_scheme(url)
    if scheme in _TG_SCHEMES:
        if not rest.strip("/"):
            raise UrlError("Wrong HTTP URL")
        return url if url[: len(scheme)].islower() else scheme + url[len(scheme) :]
    if scheme not in _HTTP_SCHEMES:
        raise UrlError("Unsupported URL protocol")
    return scheme + "://" + _normalize_http_rest(rest)


def check_link(url: str) -> str | None:
    """Return the normalized form of ``url``, or ``None`` if Telegram would reject it."""
    try:
        return check_url(url)
    except UrlError:
        return None


def link_user_id(url: str) -> int | None:
    """Return the user id of a ``tg://user?id=N`` link, else ``None``."""
    match = re.match(r"^tg:(//)?user\?(.*)$", url, re.IGNORECASE)
    if not match:
        return None
    ids = parse_qs(match.group(2)).get("id", [])
    if len(ids) == 1 and ids[0].isdigit() and int(ids[0]) > 0:
        return int(ids[0])
    return None


def _split_scheme(url: str) -> tuple[str, str]:
    """Split ``url`` into a lower-case scheme and the remainder (default scheme: http)."""
    match = _SCHEME_RE.match(url)
    if match:
        scheme = match.group(1).lower()
        if match.group(2) or scheme in _TG_SCHEMES:
            return scheme, url[match.end() :]
    return "http", url


def _normalize_http_rest(rest: str) -> str:
    """Validate the host/port of an http(s) URL without scheme and add a ``/`` path if none."""
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    userinfo, _, hostport = authority.rpartition("@")
    host, port = _split_port(hostport)
    _check_host(host)
    if not tail.startswith("/"):
        tail = "/" + tail
    prefix = userinfo + "@" if userinfo else ""
    return prefix + host.lower() + (":" + port if port else "") + tail


def _split_port(hostport: str) -> tuple[str, str]:
    """Split ``host:port``; the port must be a number in 1..65535."""
    host, sep, port = hostport.partition(":")
    if sep and not (port.isdigit() and 0 < int(port) < 65536):
        raise UrlError("Wrong port number specified in the URL")
    return host, port


def _check_host(host: str) -> None:
    """Accept IPv4 addresses and domain names with at least two labels and a real TLD."""
    if not host:
        raise UrlError("URL host is empty")
    if _IPV4_RE.match(host):
        if all(int(part) < 256 for part in host.split(".")):
            return
        raise UrlError("Wrong HTTP URL")
    labels = host.rstrip(".").split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        raise UrlError("Wrong HTTP URL")
    if not _TLD_RE.match(labels[-1]):
        raise UrlError("Wrong HTTP URL")
