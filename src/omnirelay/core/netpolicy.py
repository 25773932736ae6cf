"""Which network addresses an untrusted URL may reach: pure classification, no I/O.

The gateway fetches URLs that clients send (input images). Every address such a URL resolves to
must be an ordinary public unicast address; anything that reaches the gateway itself, its private
network or a cloud metadata service is refused. ``classify`` names the category of an address and
``refusal`` turns a non-public category into the words of an error message.

IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible
``::a.b.c.d``, NAT64 ``64:ff9b::/96`` and 6to4 ``2002::/16``) are judged by the IPv4 address they
carry, so ``::ffff:127.0.0.1`` is as much a loopback address as ``127.0.0.1``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Final, Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Category = Literal[
    "public",
    "loopback",
    "private",
    "link-local",
    "cloud metadata",
    "shared (CGNAT)",
    "unspecified",
    "multicast",
    "reserved",
]


def _nets4(*cidrs: str) -> tuple[ipaddress.IPv4Network, ...]:
    return tuple(ipaddress.IPv4Network(c) for c in cidrs)


def _nets6(*cidrs: str) -> tuple[ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.IPv6Network(c) for c in cidrs)


# Checked in order: the first match names the category (metadata before link-local and CGNAT).
_V4: Final[tuple[tuple[Category, tuple[ipaddress.IPv4Network, ...]], ...]] = (
    ("cloud metadata", _nets4("169.254.169.254/32", "100.100.100.200/32")),
    ("unspecified", _nets4("0.0.0.0/8")),
    ("loopback", _nets4("127.0.0.0/8")),
    ("private", _nets4("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
    ("link-local", _nets4("169.254.0.0/16")),
    ("shared (CGNAT)", _nets4("100.64.0.0/10")),
    ("multicast", _nets4("224.0.0.0/4")),
    (
        "reserved",
        _nets4(
            "192.0.0.0/24",  # IETF protocol assignments
            "192.0.2.0/24",  # documentation (TEST-NET-1)
            "192.88.99.0/24",  # deprecated 6to4 relay anycast
            "198.18.0.0/15",  # benchmarking
            "198.51.100.0/24",  # documentation (TEST-NET-2)
            "203.0.113.0/24",  # documentation (TEST-NET-3)
            "240.0.0.0/4",  # reserved, including 255.255.255.255
        ),
    ),
)

_V6: Final[tuple[tuple[Category, tuple[ipaddress.IPv6Network, ...]], ...]] = (
    ("cloud metadata", _nets6("fd00:ec2::254/128")),
    ("unspecified", _nets6("::/128")),
    ("loopback", _nets6("::1/128")),
    ("private", _nets6("fc00::/7", "fec0::/10", "64:ff9b:1::/48")),  # ULA, site-local, local NAT64
    ("link-local", _nets6("fe80::/10")),
    ("multicast", _nets6("ff00::/8")),
    (
        "reserved",
        _nets6(
            "100::/64",  # discard-only
            "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, ...)
            "2001:db8::/32",  # documentation
            "3fff::/20",  # documentation
        ),
    ),
)

_GLOBAL_UNICAST_V6: Final = ipaddress.IPv6Network("2000::/3")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")

_ARTICLES: Final[dict[Category, str]] = {
    "public": "a public",
    "loopback": "a loopback",
    "private": "a private",
    "link-local": "a link-local",
    "cloud metadata": "a cloud metadata",
    "shared (CGNAT)": "a shared (CGNAT)",
    "unspecified": "an unspecified",
    "multicast": "a multicast",
    "reserved": "a reserved",
}


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where it is one of the embedding forms."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if _is_ipv4_compatible(ip):  # "::" and "::1" are themselves
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _is_ipv4_compatible(ip: ipaddress.IPv6Address) -> bool:
    return ip in _IPV4_COMPATIBLE and int(ip) > 1


def parse_address(value: str) -> IPAddress:
    """An address as ``getaddrinfo`` or a URL writes it: IPv6 may carry brackets or a ``%scope``."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]
    return ipaddress.ip_address(text)


def _classify4(ip: ipaddress.IPv4Address) -> Category:
    for category, nets in _V4:
        if any(ip in net for net in nets):
            return category
    return "public"


def classify(ip: IPAddress) -> Category:
    """The category of an address; only ``"public"`` may be connected to."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _classify4(ip)
    for category, nets in _V6:
        if any(ip in net for net in nets):
            return category
    inner = embedded_ipv4(ip)
    if inner is not None:
        category = _classify4(inner)
        # The deprecated IPv4-compatible form is never a route to a public host.
        return "reserved" if category == "public" and _is_ipv4_compatible(ip) else category
    if ip not in _GLOBAL_UNICAST_V6:
        return "reserved"
    return "public"


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs to networks; a bare address is a single-address network. Raises ValueError."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def is_allowed(ip: IPAddress, allow: Sequence[IPNetwork]) -> bool:
    """Whether an operator exempted this address (or the IPv4 address it embeds)."""
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            candidates.append(inner)
    return any(c.version == net.version and c in net for c in candidates for net in allow)


def refusal(ip: IPAddress, allow: Sequence[IPNetwork] = ()) -> str | None:
    """None when the address may be connected to, else why not: "10.0.0.5 is a private address"."""
    category = classify(ip)
    if category == "public" or is_allowed(ip, allow):
        return None
    return f"{ip} is {describe(category)}"


def describe(category: Category) -> str:
    """The words for a category: "a private address", "an unspecified address", ..."""
    return f"{_ARTICLES[category]} address"
