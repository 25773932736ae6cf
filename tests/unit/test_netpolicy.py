"""omnirelay.core.netpolicy: which addresses an untrusted URL may reach."""

from __future__ import annotations

import ipaddress

import pytest

from omnirelay.core.netpolicy import (
    Category,
    classify,
    describe,
    embedded_ipv4,
    is_allowed,
    parse_address,
    parse_networks,
    refusal,
)

TABLE: list[tuple[str, Category]] = [
    # IPv4 public
    ("8.8.8.8", "public"),
    ("1.1.1.1", "public"),
    ("93.184.215.14", "public"),
    ("172.32.0.1", "public"),  # just past 172.16/12
    ("100.63.255.255", "public"),  # just before 100.64/10
    ("100.128.0.0", "public"),  # just after 100.64/10
    ("223.255.255.255", "public"),  # just before multicast
    # loopback
    ("127.0.0.1", "loopback"),
    ("127.0.0.2", "loopback"),
    ("127.255.255.255", "loopback"),
    # private (RFC 1918)
    ("10.0.0.5", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.0.1", "private"),
    # link-local and cloud metadata
    ("169.254.0.1", "link-local"),
    ("169.254.169.253", "link-local"),
    ("169.254.169.254", "cloud metadata"),  # AWS, GCP, Azure, OpenStack, ...
    ("100.100.100.200", "cloud metadata"),  # Alibaba Cloud
    # CGNAT
    ("100.64.0.0", "shared (CGNAT)"),
    ("100.127.255.255", "shared (CGNAT)"),
    # unspecified ("this network": Linux connects 0.0.0.0 to the local host)
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    # multicast
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    # reserved
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.0.8", "reserved"),
    ("192.0.2.1", "reserved"),
    ("192.88.99.1", "reserved"),
    ("198.18.0.1", "reserved"),
    ("198.19.255.255", "reserved"),
    ("198.51.100.7", "reserved"),
    ("203.0.113.9", "reserved"),
    # IPv6 public
    ("2606:4700:4700::1111", "public"),
    ("2001:4860:4860::8888", "public"),
    ("2a00:1450:4001:80b::200e", "public"),
    # IPv6 special
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "private"),
    ("fd12:3456:789a::1", "private"),
    ("fec0::1", "private"),  # deprecated site-local
    ("64:ff9b:1::1", "private"),  # local-use NAT64
    ("fe80::1", "link-local"),
    ("febf:ffff::1", "link-local"),
    ("fd00:ec2::254", "cloud metadata"),  # AWS over IPv6
    ("ff02::1", "multicast"),
    ("ff0e::101", "multicast"),
    ("2001:db8::1", "reserved"),
    ("3fff::1", "reserved"),
    ("100::1", "reserved"),
    ("2001::1", "reserved"),  # Teredo
    ("2001:10::1", "reserved"),  # ORCHID
    ("4000::1", "reserved"),  # outside global unicast 2000::/3
    ("::ffff:0:808:808", "reserved"),  # SIIT IPv4-translated form
    # IPv4-mapped: judged by the IPv4 address they carry
    ("::ffff:8.8.8.8", "public"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:192.168.1.1", "private"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("::ffff:169.254.1.1", "link-local"),
    ("::ffff:100.64.0.1", "shared (CGNAT)"),
    ("::ffff:0.0.0.0", "unspecified"),
    ("::ffff:224.0.0.1", "multicast"),
    ("::ffff:240.0.0.1", "reserved"),
    # IPv4-compatible (deprecated): never public
    ("::127.0.0.1", "loopback"),
    ("::10.0.0.1", "private"),
    ("::8.8.8.8", "reserved"),
    # NAT64 well-known prefix
    ("64:ff9b::8.8.8.8", "public"),
    ("64:ff9b::10.0.0.1", "private"),
    ("64:ff9b::169.254.169.254", "cloud metadata"),
    # 6to4
    ("2002:808:808::1", "public"),
    ("2002:7f00:1::1", "loopback"),
    ("2002:a9fe:a9fe::", "cloud metadata"),
    ("2002:c0a8:101::1", "private"),
]


@pytest.mark.parametrize(("address", "category"), TABLE)
def test_classification(address: str, category: Category) -> None:
    assert classify(ipaddress.ip_address(address)) == category


def test_every_category_is_covered() -> None:
    assert {c for _, c in TABLE} == {
        "public",
        "loopback",
        "private",
        "link-local",
        "cloud metadata",
        "shared (CGNAT)",
        "unspecified",
        "multicast",
        "reserved",
    }


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("10.0.0.5", "10.0.0.5 is a private address"),
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("169.254.169.254", "169.254.169.254 is a cloud metadata address"),
        ("0.0.0.0", "0.0.0.0 is an unspecified address"),
        ("100.64.0.1", "100.64.0.1 is a shared (CGNAT) address"),
        ("fe80::1", "fe80::1 is a link-local address"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1 is a loopback address"),
        ("ff02::1", "ff02::1 is a multicast address"),
        ("240.0.0.1", "240.0.0.1 is a reserved address"),
    ],
)
def test_refusal_wording(address: str, message: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == message


def test_public_is_not_refused() -> None:
    assert refusal(ipaddress.ip_address("8.8.8.8")) is None
    assert refusal(ipaddress.ip_address("2606:4700:4700::1111")) is None


def test_describe() -> None:
    assert describe("private") == "a private address"
    assert describe("unspecified") == "an unspecified address"


def test_allow_networks_exempt_exactly_what_they_name() -> None:
    allow = parse_networks(["127.0.0.2/32", "fd00:1::/64"])
    assert refusal(ipaddress.ip_address("127.0.0.2"), allow) is None
    assert refusal(ipaddress.ip_address("::ffff:127.0.0.2"), allow) is None  # the same host, mapped
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow) == "127.0.0.1 is a loopback address"
    assert refusal(ipaddress.ip_address("fd00:1::5"), allow) is None
    assert refusal(ipaddress.ip_address("fd00:2::5"), allow) == "fd00:2::5 is a private address"
    assert not is_allowed(ipaddress.ip_address("10.0.0.1"), allow)


def test_parse_networks() -> None:
    assert [str(n) for n in parse_networks(["10.1.2.3", " 192.168.0.0/16 ", "::1"])] == [
        "10.1.2.3/32",
        "192.168.0.0/16",
        "::1/128",
    ]
    with pytest.raises(ValueError):
        parse_networks(["10.0.0.0/33"])
    with pytest.raises(ValueError):
        parse_networks(["example.com"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        (" 8.8.8.8 ", "8.8.8.8"),
        ("::FFFF:127.0.0.1", "::ffff:7f00:1"),
    ],
)
def test_parse_address(text: str, expected: str) -> None:
    assert str(parse_address(text)) == expected


@pytest.mark.parametrize("text", ["localhost", "127.1", "2130706433", "0x7f.0.0.1", "", "1.2.3.4.5"])
def test_parse_address_rejects_non_canonical_forms(text: str) -> None:
    # These go to the resolver instead, and are judged by what it answers.
    with pytest.raises(ValueError):
        parse_address(text)


def test_embedded_ipv4() -> None:
    def embedded(text: str) -> str | None:
        address = ipaddress.IPv6Address(text)
        inner = embedded_ipv4(address)
        return None if inner is None else str(inner)

    assert embedded("::ffff:1.2.3.4") == "1.2.3.4"
    assert embedded("::1.2.3.4") == "1.2.3.4"
    assert embedded("64:ff9b::1.2.3.4") == "1.2.3.4"
    assert embedded("2002:102:304::") == "1.2.3.4"
    assert embedded("::1") is None
    assert embedded("::") is None
    assert embedded("2606:4700::1") is None
