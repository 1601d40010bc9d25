"""URLs: one canonical spelling for everything keyed on a URL, and the check that keeps the crawler off
private networks (SSRF: a feed, sitemap or redirect pointing at 127.0.0.1 or 169.254.169.254)."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# Parameters that only say where a click came from: removed so one article has one URL.
TRACKING_PARAMETER = re.compile(
    r"^(utm_\w+|fbclid|gclid|gclsrc|dclid|gbraid|wbraid|msclkid|yclid|twclid|igshid|mc_cid|mc_eid|"
    r"_ga|_gl|_hsenc|_hsmi|mkt_tok|oly_anon_id|oly_enc_id|vero_id|wt_mc|xtor|ncid|cmpid|ito|s_cid)$",
    re.IGNORECASE,
)


def canonicalize_url(url: str) -> str:
    """Lower-case scheme and host, default port, fragment and tracking parameters dropped, query sorted.

    Anything that does not parse as a URL is returned unchanged (it is recorded, not crashed on).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return url.strip()
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username or parts.password:
        netloc = f"{parts.username or ''}{':' + parts.password if parts.password else ''}@{netloc}"
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                   if not TRACKING_PARAMETER.match(k))
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(query, doseq=True), ""))


def host_of(url: str) -> str:
    """The `host[:port]` a URL's requests go to (the unit of politeness and of robots.txt)."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1].lower()


def host_allowed(url: str, allowed_hosts: list[str] | None) -> bool:
    """Whether the URL's host is one of the allowed hosts or a subdomain of one (no list: any host)."""
    if not allowed_hosts:
        return True
    host = (urlsplit(url).hostname or "").lower()
    return any(host == h.lower() or host.endswith("." + h.lower()) for h in allowed_hosts)


def _blocked_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified)


def unsafe_url_reason(url: str, allow_private_network: bool = False) -> tuple[str, str] | None:
    """(error kind, message) when the URL must not be fetched, else None.

    A scheme other than http(s) is always refused; loopback, private, link-local, multicast and reserved
    addresses only without `allow_private_network`. Host names are resolved, so a public name pointing at
    a private address is refused too.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError as exc:
        return "bad_url", f"malformed URL: {exc}"
    if parts.scheme.lower() not in DEFAULT_PORTS:
        return "scheme", f"scheme {parts.scheme or '(none)'!r} is not http or https"
    if not parts.hostname:
        return "bad_url", "URL has no host"
    if allow_private_network:
        return None
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError) as exc:
        return "dns", f"cannot resolve {parts.hostname}: {exc}"
    blocked = sorted(a for a in addresses if _blocked_address(a))
    if blocked:
        return "private_network", (f"{parts.hostname} resolves to non-public address {blocked[0]} "
                                   "(set allow_private_network: true on the source to allow it)")
    return None
