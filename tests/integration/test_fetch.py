"""omnirelay.core.fetch against real local HTTP(S) servers: every guard, each refusal by its reason.

Two servers run the same app: 127.0.0.2 stands in for a public image host (the tests' policy allows
exactly 127.0.0.2/32) and 127.0.0.1 for something internal that must never be reached.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import ipaddress
import socket
import ssl
import struct
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image
from pydantic import ValidationError

from omnirelay.core import fetch as fetch_module
from omnirelay.core.fetch import (
    NOT_AN_IMAGE,
    FetchPolicy,
    check_image,
    decode_data_url,
    fetch_image,
    image_from_upload,
    load_image,
)
from omnirelay.core.netpolicy import IPAddress
from omnirelay.errors import UnprocessableEntity

ALLOWED = "127.0.0.2"
POLICY = FetchPolicy(allow_networks=[f"{ALLOWED}/32"])


def make_image(fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(buf, fmt)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims huge dimensions: a decompression bomb as far as its header goes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


PNG = make_image("PNG")
JPEG = make_image("JPEG")


# --- the servers --------------------------------------------------------------------------------


@dataclass
class Hit:
    server: str  # the local address that took the request
    path: str
    host: str


@dataclass
class Servers:
    loopback: int  # port on 127.0.0.1 (the "internal" server)
    allowed: int  # port on 127.0.0.2 (the stand-in public host)
    hits: list[Hit] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://{ALLOWED}:{self.allowed}{path}"

    def hits_on(self, server: str) -> list[Hit]:
        return [h for h in self.hits if h.server == server]


def build_app(hits: list[Hit]) -> web.Application:
    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        hits.append(Hit(str(sockname[0]) if sockname else "?", request.path, request.host))
        return await handler(request)

    async def png(_: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def jpeg(_: web.Request) -> web.Response:
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def octet_png(_: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="application/octet-stream")

    async def mislabeled(_: web.Request) -> web.Response:
        return web.Response(body=JPEG, content_type="image/png")

    async def html(_: web.Request) -> web.Response:
        return web.Response(text="<html>hi</html>", content_type="text/html")

    async def not_image(_: web.Request) -> web.Response:
        return web.Response(body=b"hello, definitely not pixels", content_type="image/png")

    async def truncated(_: web.Request) -> web.Response:
        big = make_image("PNG", (300, 300))
        return web.Response(body=big[: len(big) // 2], content_type="image/png")

    async def bomb(request: web.Request) -> web.Response:
        side = int(request.query["side"])
        return web.Response(body=png_header_only(side, side), content_type="image/png")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"\x00" * int(request.query["n"]), content_type="image/png")

    async def big_chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        left = int(request.query["n"])
        try:
            while left > 0:
                await resp.write(b"\x00" * min(left, 16384))
                left -= 16384
            await resp.write_eof()
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass  # the client stopped reading, as it should
        return resp

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response(body=PNG, content_type="image/png")

    async def trickle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(100):
            await resp.write(b"\x00")
            await asyncio.sleep(0.1)
        return resp

    async def redirect(request: web.Request) -> web.Response:
        status = int(request.query.get("status", "302"))
        return web.Response(status=status, headers={"Location": request.query["to"]})

    async def no_location(_: web.Request) -> web.Response:
        return web.Response(status=302)

    async def chain(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(body=PNG, content_type="image/png")
        return web.Response(status=301, headers={"Location": f"../chain/{n - 1}"})

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="nope")

    async def gzipped(_: web.Request) -> web.Response:
        return web.Response(
            body=zlib.compress(PNG), headers={"Content-Type": "image/png", "Content-Encoding": "deflate"}
        )

    app = web.Application(middlewares=[record])
    app.router.add_get("/png", png)
    app.router.add_get("/jpeg", jpeg)
    app.router.add_get("/octet-png", octet_png)
    app.router.add_get("/mislabeled", mislabeled)
    app.router.add_get("/html", html)
    app.router.add_get("/not-image", not_image)
    app.router.add_get("/truncated", truncated)
    app.router.add_get("/bomb", bomb)
    app.router.add_get("/big", big)
    app.router.add_get("/big-chunked", big_chunked)
    app.router.add_get("/slow", slow)
    app.router.add_get("/trickle", trickle)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/no-location", no_location)
    app.router.add_get("/chain/{n}", chain)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/gzipped", gzipped)
    return app


def _port(site: web.TCPSite) -> int:
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    return int(server.sockets[0].getsockname()[1])


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    hits: list[Hit] = []
    runner = web.AppRunner(build_app(hits), shutdown_timeout=0.1)
    await runner.setup()
    sites = [web.TCPSite(runner, "127.0.0.1", 0), web.TCPSite(runner, ALLOWED, 0)]
    for site in sites:
        await site.start()
    try:
        yield Servers(loopback=_port(sites[0]), allowed=_port(sites[1]), hits=hits)
    finally:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def refused(url: str, http: aiohttp.ClientSession, policy: FetchPolicy = POLICY) -> str:
    with pytest.raises(UnprocessableEntity) as info:
        await fetch_image(url, http=http, policy=policy)
    assert info.value.param == "image"
    assert info.value.http_status == 422
    return info.value.message


def pin_dns(monkeypatch: pytest.MonkeyPatch, answers: list[list[str]]) -> list[str]:
    """Replace DNS: successive lookups get successive answers (the last one repeats)."""
    asked: list[str] = []

    async def fake_resolve(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        answer = answers[min(len(asked), len(answers)) - 1]
        return [ipaddress.ip_address(a) for a in answer]

    monkeypatch.setattr(fetch_module, "resolve_host", fake_resolve)
    return asked


# --- accepted -----------------------------------------------------------------------------------


async def test_good_png(servers: Servers, http: aiohttp.ClientSession) -> None:
    image = await fetch_image(servers.url("/png"), http=http, policy=POLICY)
    assert (image.media_type, image.width, image.height, image.data) == ("image/png", 64, 48, PNG)


async def test_good_jpeg(servers: Servers, http: aiohttp.ClientSession) -> None:
    image = await fetch_image(servers.url("/jpeg"), http=http, policy=POLICY)
    assert (image.media_type, image.width, image.height, image.data) == ("image/jpeg", 64, 48, JPEG)


async def test_octet_stream_then_the_bytes_decide(servers: Servers, http: aiohttp.ClientSession) -> None:
    image = await fetch_image(servers.url("/octet-png"), http=http, policy=POLICY)
    assert image.media_type == "image/png"


async def test_declared_type_does_not_override_the_bytes(
    servers: Servers, http: aiohttp.ClientSession
) -> None:
    image = await fetch_image(servers.url("/mislabeled"), http=http, policy=POLICY)
    assert image.media_type == "image/jpeg"


async def test_relative_redirects_within_the_cap(servers: Servers, http: aiohttp.ClientSession) -> None:
    image = await fetch_image(servers.url("/chain/3"), http=http, policy=POLICY)
    assert image.data == PNG
    assert [h.path for h in servers.hits] == ["/chain/3", "/chain/2", "/chain/1", "/chain/0"]


# --- refused before any connection ----------------------------------------------------------------


async def test_loopback_by_ip(servers: Servers, http: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{servers.loopback}/png"
    assert await refused(url, http) == "image URL refused: 127.0.0.1 is a loopback address"
    assert servers.hits == []


async def test_allowed_network_is_exactly_what_was_allowed(
    servers: Servers, http: aiohttp.ClientSession
) -> None:
    message = await refused(servers.url("/png"), http, FetchPolicy())
    assert message == "image URL refused: 127.0.0.2 is a loopback address"
    assert servers.hits == []


async def test_loopback_by_name_after_dns(servers: Servers, http: aiohttp.ClientSession) -> None:
    message = await refused(f"http://localhost:{servers.loopback}/png", http)
    assert message.startswith("image URL refused: localhost resolves to ")
    assert message.endswith(", a loopback address")
    assert servers.hits == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.5/x.png", "10.0.0.5 is a private address"),
        ("http://192.168.1.20:8080/x.png", "192.168.1.20 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://100.100.100.200/latest/meta-data/", "100.100.100.200 is a cloud metadata address"),
        ("http://[fd00:ec2::254]/latest/", "fd00:ec2::254 is a cloud metadata address"),
        ("http://169.254.10.1/", "169.254.10.1 is a link-local address"),
        ("http://100.64.1.1/", "100.64.1.1 is a shared (CGNAT) address"),
        ("http://[::1]/x.png", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/x.png", "::ffff:7f00:1 is a loopback address"),
        ("http://[::ffff:10.1.2.3]/x.png", "::ffff:a01:203 is a private address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        ("http://[fc00::5]/", "fc00::5 is a private address"),
        ("http://0.0.0.0/x.png", "0.0.0.0 is an unspecified address"),
        ("http://[::]/x.png", ":: is an unspecified address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://240.0.0.1/", "240.0.0.1 is a reserved address"),
        ("https://10.0.0.5/x.png", "10.0.0.5 is a private address"),
    ],
)
async def test_refused_literals(url: str, reason: str, http: aiohttp.ClientSession) -> None:
    assert await refused(url, http) == f"image URL refused: {reason}"


async def test_numeric_host_forms_are_judged_by_what_they_resolve_to(http: aiohttp.ClientSession) -> None:
    assert (
        await refused("http://2130706433/x.png", http)
        == "image URL refused: 2130706433 resolves to 127.0.0.1, a loopback address"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x.png", "image URL refused: scheme ftp is not allowed"),
        ("file:///etc/passwd", "image URL refused: scheme file is not allowed"),
        ("gopher://example.com/", "image URL refused: scheme gopher is not allowed"),
        ("javascript:alert(1)", "image URL refused: scheme javascript is not allowed"),
        ("example.com/x.png", "image URL refused: it is not an absolute http or https URL"),
        ("http:///x.png", "image URL refused: it has no host"),
        ("http://[::1/x.png", "image URL refused: it is not a valid URL"),
        ("http://user:pw@example.com/x.png", "image URL refused: credentials in the URL are not allowed"),
        ("http://example.com/" + "a" * 9000, "image URL is longer than 8192 characters"),
    ],
)
async def test_refused_urls(url: str, reason: str, http: aiohttp.ClientSession) -> None:
    assert await refused(url, http) == reason


async def test_every_resolved_address_must_be_public(
    monkeypatch: pytest.MonkeyPatch, servers: Servers, http: aiohttp.ClientSession
) -> None:
    pin_dns(monkeypatch, [[ALLOWED, "10.0.0.1"]])
    message = await refused(f"http://images.test:{servers.allowed}/png", http)
    assert message == "image URL refused: images.test resolves to 10.0.0.1, a private address"
    assert servers.hits == []


async def test_unresolvable_host(monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession) -> None:
    async def no_such_host(host: str, port: int) -> list[IPAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(fetch_module, "resolve_host", no_such_host)
    message = await refused("http://nowhere.invalid/x.png", http)
    assert message == "image URL refused: host nowhere.invalid could not be resolved"


# --- DNS rebinding: the connection goes to the vetted address ---------------------------------


async def test_connects_only_to_the_vetted_address(
    monkeypatch: pytest.MonkeyPatch, servers: Servers, http: aiohttp.ClientSession
) -> None:
    # The first answer is "public"; any later lookup would say 127.0.0.1 (a rebinding attack).
    asked = pin_dns(monkeypatch, [[ALLOWED], ["127.0.0.1"]])
    image = await fetch_image(f"http://images.test:{servers.allowed}/png", http=http, policy=POLICY)
    assert image.data == PNG
    assert asked == ["images.test"]
    assert [(h.server, h.host) for h in servers.hits] == [(ALLOWED, f"images.test:{servers.allowed}")]


async def test_each_redirect_hop_is_resolved_and_vetted_again(
    monkeypatch: pytest.MonkeyPatch, servers: Servers, http: aiohttp.ClientSession
) -> None:
    asked = pin_dns(monkeypatch, [[ALLOWED], ["127.0.0.1"]])
    target = f"http://images.test:{servers.allowed}/png"
    message = await refused(f"http://images.test:{servers.allowed}/redirect?to={target}", http)
    assert message == "image URL refused: images.test resolves to 127.0.0.1, a loopback address"
    assert asked == ["images.test", "images.test"]
    assert [h.path for h in servers.hits] == ["/redirect"]


# --- redirects --------------------------------------------------------------------------------


async def test_redirect_to_loopback_refused_at_the_redirect(
    servers: Servers, http: aiohttp.ClientSession
) -> None:
    inner = f"http://127.0.0.1:{servers.loopback}/png"
    for status in (301, 302, 303, 307, 308):
        message = await refused(servers.url(f"/redirect?status={status}&to={inner}"), http)
        assert message == "image URL refused: 127.0.0.1 is a loopback address"
    assert servers.hits_on("127.0.0.1") == []
    assert len(servers.hits_on(ALLOWED)) == 5


async def test_redirect_to_metadata_and_other_schemes(servers: Servers, http: aiohttp.ClientSession) -> None:
    to_metadata = servers.url("/redirect?to=http://169.254.169.254/latest/meta-data/")
    assert await refused(to_metadata, http) == (
        "image URL refused: 169.254.169.254 is a cloud metadata address"
    )
    to_file = servers.url("/redirect?to=file:///etc/passwd")
    assert await refused(to_file, http) == "image URL refused: scheme file is not allowed"


async def test_redirect_chain_longer_than_the_cap(servers: Servers, http: aiohttp.ClientSession) -> None:
    assert await refused(servers.url("/chain/4"), http) == "image URL redirected more than 3 times"
    assert len(servers.hits) == 4  # the original request and three followed redirects
    servers.hits.clear()
    strict = FetchPolicy(allow_networks=[f"{ALLOWED}/32"], max_redirects=0)
    assert await refused(servers.url("/chain/1"), http, strict) == "image URL redirected more than 0 times"
    assert len(servers.hits) == 1


async def test_redirect_without_location(servers: Servers, http: aiohttp.ClientSession) -> None:
    assert await refused(servers.url("/no-location"), http) == (
        "image URL answered HTTP 302 without a Location"
    )


# --- what comes back --------------------------------------------------------------------------

SMALL = FetchPolicy(allow_networks=[f"{ALLOWED}/32"], max_bytes=100_000)


async def test_too_large_with_content_length(servers: Servers, http: aiohttp.ClientSession) -> None:
    message = await refused(servers.url("/big?n=200000"), http, SMALL)
    assert message == "image is larger than the 100000 byte limit"


async def test_too_large_without_content_length(servers: Servers, http: aiohttp.ClientSession) -> None:
    message = await refused(servers.url("/big-chunked?n=5000000"), http, SMALL)
    assert message == "image is larger than the 100000 byte limit"


async def test_slow_server_times_out(servers: Servers, http: aiohttp.ClientSession) -> None:
    quick = FetchPolicy(allow_networks=[f"{ALLOWED}/32"], timeout_s=0.5)
    started = time.monotonic()
    assert await refused(servers.url("/slow"), http, quick) == "image URL did not answer within 0.5 s"
    assert await refused(servers.url("/trickle"), http, quick) == "image URL did not answer within 0.5 s"
    assert time.monotonic() - started < 3


async def test_default_timeout_wording(monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession) -> None:
    async def hang(host: str, port: int) -> list[IPAddress]:
        await asyncio.sleep(30)
        return []

    monkeypatch.setattr(fetch_module, "resolve_host", hang)
    policy = FetchPolicy()
    assert policy.timeout_s == 15.0
    monkeypatch.setattr(asyncio, "timeout", _scaled_timeout(asyncio.timeout, 0.01))
    assert await refused("http://images.test/x.png", http, policy) == "image URL did not answer within 15 s"


def _scaled_timeout(
    original: Callable[[float | None], asyncio.Timeout], factor: float
) -> Callable[[float | None], asyncio.Timeout]:
    def scaled(delay: float | None) -> asyncio.Timeout:
        return original(None if delay is None else delay * factor)

    return scaled


async def test_wrong_content_type(servers: Servers, http: aiohttp.ClientSession) -> None:
    assert await refused(servers.url("/html"), http) == (
        "image URL answered with content type text/html, not an image"
    )


async def test_bytes_that_are_not_an_image(servers: Servers, http: aiohttp.ClientSession) -> None:
    assert await refused(servers.url("/not-image"), http) == NOT_AN_IMAGE
    assert NOT_AN_IMAGE == "the data is not a PNG, JPEG, WEBP, GIF or BMP image"


async def test_truncated_image(servers: Servers, http: aiohttp.ClientSession) -> None:
    assert await refused(servers.url("/truncated"), http) == "the PNG image is damaged or truncated"


async def test_decompression_bomb(servers: Servers, http: aiohttp.ClientSession) -> None:
    assert await refused(servers.url("/bomb?side=8000"), http) == (
        "image is 8000x8000 pixels, over the 50000000 pixel limit"
    )
    # So large that Pillow itself refuses to open it.
    assert await refused(servers.url("/bomb?side=30000"), http) == "image is over the 50000000 pixel limit"


async def test_error_status(servers: Servers, http: aiohttp.ClientSession) -> None:
    assert await refused(servers.url("/status/404"), http) == "image URL answered HTTP 404"
    assert await refused(servers.url("/status/500"), http) == "image URL answered HTTP 500"


async def test_compressed_answer_refused(servers: Servers, http: aiohttp.ClientSession) -> None:
    assert await refused(servers.url("/gzipped"), http) == (
        "image URL answered with content encoding deflate, not identity"
    )


async def test_connection_refused(http: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind((ALLOWED, 0))
        closed_port = probe.getsockname()[1]
    message = await refused(f"http://{ALLOWED}:{closed_port}/png", http)
    assert message == f"image URL could not be fetched: connection to {ALLOWED} failed"


async def test_param_can_be_named(servers: Servers, http: aiohttp.ClientSession) -> None:
    with pytest.raises(UnprocessableEntity) as info:
        await fetch_image(servers.url("/html"), http=http, policy=POLICY, param="mask")
    assert info.value.param == "mask"


# --- https: connected by IP, verified by name -------------------------------------------------


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "images.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("images.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return Tls(server, client)


async def test_https_verifies_the_certificate_against_the_host_name(
    monkeypatch: pytest.MonkeyPatch, tls: Tls
) -> None:
    hits: list[Hit] = []
    runner = web.AppRunner(build_app(hits), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, ALLOWED, 0, ssl_context=tls.server)
    await site.start()
    try:
        port = _port(site)
        pin_dns(monkeypatch, [[ALLOWED]])
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls.client)) as http:
            image = await fetch_image(f"https://images.test:{port}/png", http=http, policy=POLICY)
            assert image.data == PNG
            assert [(h.server, h.host) for h in hits] == [(ALLOWED, f"images.test:{port}")]
            # Same address, another name: the certificate does not cover it.
            message = await refused(f"https://other.test:{port}/png", http)
            assert message == (
                "image URL could not be fetched: the TLS certificate of other.test could not be verified"
            )
    finally:
        await runner.cleanup()


# --- data URLs ----------------------------------------------------------------------------------


def data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def refused_data_url(value: str, policy: FetchPolicy = POLICY) -> str:
    with pytest.raises(UnprocessableEntity) as info:
        decode_data_url(value, policy)
    assert info.value.param == "image"
    return info.value.message


def test_data_url_good() -> None:
    image = decode_data_url(data_url(PNG), POLICY)
    assert (image.media_type, image.width, image.height, image.data) == ("image/png", 64, 48, PNG)
    jpeg = decode_data_url(data_url(JPEG, "image/jpeg"), POLICY)
    assert jpeg.media_type == "image/jpeg"


def test_data_url_tolerates_line_breaks_and_missing_padding() -> None:
    encoded = base64.b64encode(PNG).decode()
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    assert decode_data_url(f"DATA:image/png;base64,{wrapped}", POLICY).data == PNG
    assert decode_data_url(f"data:image/png;base64,{encoded.rstrip('=')}", POLICY).data == PNG
    assert decode_data_url(f"data:image/png;base64,{encoded}\r\n", POLICY).data == PNG


def test_data_url_the_bytes_decide() -> None:
    assert decode_data_url(data_url(JPEG, "image/png"), POLICY).media_type == "image/jpeg"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("not a data url", "image data URL is malformed: expected data:image/<type>;base64,<data>"),
        ("data:image/png;base64", "image data URL is malformed: expected data:image/<type>;base64,<data>"),
        ("data:text/plain;base64,aGVsbG8=", "image data URL has media type text/plain, not image/*"),
        ("data:text/html,<b>hi</b>", "image data URL has media type text/html, not image/*"),
        ("data:image/png,rawbytes", "image data URL must be base64-encoded"),
        ("data:image/png;base64,@@@@", "image data URL is not valid base64"),
        ("data:image/png;base64,iVBORw0KGgo=é", "image data URL is not valid base64"),
        ("data:image/png;base64,iVBORw0K\x00Ggo=", "image data URL is not valid base64"),
        ("data:image/png;base64,aGVsbG8gd29ybGQ=", NOT_AN_IMAGE),
        ("data:image/png;base64,", "the image is empty"),
        (data_url(png_header_only(8000, 8000)), "image is 8000x8000 pixels, over the 50000000 pixel limit"),
    ],
)
def test_data_url_refused(value: str, reason: str) -> None:
    assert refused_data_url(value) == reason


def test_data_url_oversized() -> None:
    small = FetchPolicy(max_bytes=1000)
    # Refused on its encoded length, before anything is decoded.
    assert refused_data_url(data_url(b"\x00" * 5000), small) == "image is larger than the 1000 byte limit"
    # Just over the limit once decoded.
    assert refused_data_url(data_url(b"\x00" * 1001), small) == "image is larger than the 1000 byte limit"


# --- uploads ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("BMP", "image/bmp"),
    ],
)
def test_upload_formats(fmt: str, media_type: str) -> None:
    data = make_image(fmt, (33, 21))
    image = image_from_upload(data, media_type, POLICY)
    assert (image.media_type, image.width, image.height, image.data) == (media_type, 33, 21, data)


@pytest.mark.parametrize("content_type", [None, "", "application/octet-stream", "image/png; charset=binary"])
def test_upload_neutral_content_types(content_type: str | None) -> None:
    assert image_from_upload(PNG, content_type, POLICY).media_type == "image/png"


def test_upload_refusals() -> None:
    def reason(data: bytes, content_type: str | None, policy: FetchPolicy = POLICY) -> str:
        with pytest.raises(UnprocessableEntity) as info:
            image_from_upload(data, content_type, policy)
        return info.value.message

    assert reason(PNG, "text/plain") == "the uploaded file has content type text/plain, not an image"
    assert reason(b"", "image/png") == "the image is empty"
    assert reason(make_image("TIFF"), "image/tiff") == NOT_AN_IMAGE
    assert reason(PNG, "image/png", FetchPolicy(max_bytes=100)) == "image is larger than the 100 byte limit"
    assert reason(make_image("PNG", (100, 100)), None, FetchPolicy(max_pixels=9999)) == (
        "image is 100x100 pixels, over the 9999 pixel limit"
    )


# --- the dispatcher and the policy ------------------------------------------------------------


async def test_load_image_dispatches(servers: Servers, http: aiohttp.ClientSession) -> None:
    assert (await load_image(data_url(PNG), http=http, policy=POLICY)).data == PNG
    assert (await load_image(servers.url("/jpeg"), http=http, policy=POLICY)).data == JPEG
    big = make_image("PNG", (800, 800))  # large enough to be decoded in a worker thread
    assert (await load_image(data_url(big), http=http, policy=POLICY)).width == 800


def test_policy_defaults_and_validation() -> None:
    policy = FetchPolicy()
    assert (policy.max_bytes, policy.timeout_s, policy.max_redirects, policy.max_pixels) == (
        20 * 1024 * 1024,
        15.0,
        3,
        50_000_000,
    )
    assert policy.allow_networks == [] and policy.networks == ()
    assert [str(n) for n in POLICY.networks] == ["127.0.0.2/32"]
    with pytest.raises(ValidationError, match="not a network"):
        FetchPolicy(allow_networks=["10.0.0.0/33"])
    with pytest.raises(ValidationError):
        FetchPolicy(max_pixels=200_000_000)  # above what Pillow opens without complaint
    with pytest.raises(ValidationError):
        FetchPolicy(unknown=1)  # type: ignore[call-arg]


def test_check_image_is_the_shared_decoder() -> None:
    image = check_image(make_image("WEBP"), POLICY)
    assert image.media_type == "image/webp" and image.extension == "webp"
