"""The one guarded way in for client-supplied images: URLs, data URLs and uploaded files.

Everything a client sends as an image passes through here and comes out as a checked
``ImageInput`` (bytes that Pillow recognises as PNG, JPEG, WEBP, GIF or BMP, within the size and
pixel limits), or is refused with ``UnprocessableEntity`` saying exactly why.

Fetching a URL is the gateway making a request on a client's behalf, so it is guarded against
server-side request forgery:

* only ``http`` and ``https``; no credentials in the URL;
* the host is resolved once and every address it resolves to must be public
  (``omnirelay.core.netpolicy``); the connection then goes to a vetted address by IP, with the
  original ``Host`` header and, for https, the original name for SNI and certificate checks, so a
  second DNS answer (rebinding) can never redirect the connection;
* redirects are followed by hand, at most ``max_redirects``, and each hop is vetted again;
* one deadline covers resolution, every hop and the body; the body is capped while it streams.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
import socket
from typing import Final

import aiohttp
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from yarl import URL

from omnirelay.core.images import ImageInput
from omnirelay.core.netpolicy import (
    IPAddress,
    IPNetwork,
    classify,
    describe,
    is_allowed,
    parse_address,
    parse_networks,
    refusal,
)
from omnirelay.errors import UnprocessableEntity

MB: Final = 1024 * 1024
# Pillow warns above this many pixels (and refuses at twice as many): our own cap stays below it.
PILLOW_MAX_PIXELS: Final = 89_478_485
MAX_URL_LENGTH: Final = 8192
NOT_AN_IMAGE: Final = "the data is not a PNG, JPEG, WEBP, GIF or BMP image"

_PIL_FORMATS: Final = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
_MEDIA_TYPES: Final = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # multi-picture JPEG (many phone cameras): Pillow opens it through JPEG
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
}
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_CHUNK: Final = 64 * 1024
_THREAD_DECODE_BYTES: Final = 256 * 1024
_WHITESPACE: Final = re.compile(r"\s+")


class FetchPolicy(BaseModel):
    """Limits for client-supplied images (all of them: URLs, data URLs and uploads)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: int = Field(default=20 * MB, ge=1)
    timeout_s: float = Field(default=15.0, gt=0)
    max_redirects: int = Field(default=3, ge=0, le=20)
    max_pixels: int = Field(default=50_000_000, ge=1, le=PILLOW_MAX_PIXELS)
    # CIDRs exempted from the non-public address refusal (an internal image host, a test server).
    allow_networks: list[str] = Field(default_factory=list)

    _networks: tuple[IPNetwork, ...] = PrivateAttr(default=())

    @field_validator("allow_networks")
    @classmethod
    def _networks_ok(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                parse_networks([cidr])
            except ValueError as exc:
                raise ValueError(f"allow_networks: {cidr!r} is not a network ({exc})") from None
        return value

    def model_post_init(self, context: object, /) -> None:
        self._networks = parse_networks(self.allow_networks)

    @property
    def networks(self) -> tuple[IPNetwork, ...]:
        return self._networks


def _refuse(message: str, param: str) -> UnprocessableEntity:
    return UnprocessableEntity(message, param=param)


# --- bytes -> checked image -------------------------------------------------------------------


def check_image(data: bytes, policy: FetchPolicy, *, param: str = "image") -> ImageInput:
    """Check that bytes are one image of an accepted format within the limits; blocking (Pillow)."""
    if len(data) > policy.max_bytes:
        raise _refuse(f"image is larger than the {policy.max_bytes} byte limit", param)
    if not data:
        raise _refuse("the image is empty", param)
    pixel_limit = f"the {policy.max_pixels} pixel limit"
    try:
        image = Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(f"image is over {pixel_limit}", param) from None
    except Exception:  # UnidentifiedImageError, and whatever a damaged header makes a plugin raise
        raise _refuse(NOT_AN_IMAGE, param) from None
    with image:
        fmt = str(image.format)
        width, height = image.size
        if fmt not in _MEDIA_TYPES:
            raise _refuse(NOT_AN_IMAGE, param)
        if width < 1 or height < 1:
            raise _refuse(f"the {fmt} image has no pixels", param)
        if width * height > policy.max_pixels:
            raise _refuse(f"image is {width}x{height} pixels, over {pixel_limit}", param)
        try:
            image.verify()
        except Exception:
            raise _refuse(f"the {fmt} image is damaged or truncated", param) from None
    return ImageInput(data=data, media_type=_MEDIA_TYPES[fmt], width=width, height=height)


async def check_image_async(data: bytes, policy: FetchPolicy, *, param: str = "image") -> ImageInput:
    """``check_image``, in a worker thread when the bytes are large enough to be worth it."""
    if len(data) > _THREAD_DECODE_BYTES:
        return await asyncio.to_thread(check_image, data, policy, param=param)
    return check_image(data, policy, param=param)


def decode_data_url(value: str, policy: FetchPolicy, *, param: str = "image") -> ImageInput:
    """A ``data:image/...;base64,...`` URL to a checked image."""
    head, comma, payload = value.partition(",")
    if not comma or head[:5].lower() != "data:":
        raise _refuse("image data URL is malformed: expected data:image/<type>;base64,<data>", param)
    parts = [p.strip().lower() for p in head[5:].split(";")]
    media_type, options = parts[0], parts[1:]
    if media_type and not (media_type.startswith("image/") or media_type == "application/octet-stream"):
        raise _refuse(f"image data URL has media type {media_type}, not image/*", param)
    if "base64" not in options:
        raise _refuse("image data URL must be base64-encoded", param)
    limit = (policy.max_bytes + 2) // 3 * 4
    too_large = f"image is larger than the {policy.max_bytes} byte limit"
    if len(payload) > limit + limit // 8 + 1024:  # room for line breaks, refused before any copy
        raise _refuse(too_large, param)
    try:
        data = _b64decode(payload, limit)
    except OverflowError:
        raise _refuse(too_large, param) from None
    except (binascii.Error, ValueError):
        raise _refuse("image data URL is not valid base64", param) from None
    return check_image(data, policy, param=param)


def _b64decode(payload: str, limit: int) -> bytes:
    """Strict base64, allowing line breaks and missing padding; OverflowError past ``limit`` chars."""
    try:
        if len(payload) <= limit and len(payload) % 4 == 0:
            return base64.b64decode(payload, validate=True)  # the common case: no copy, no cleanup
    except binascii.Error:
        pass
    compact = _WHITESPACE.sub("", payload)
    if len(compact) > limit:
        raise OverflowError
    return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)


def image_from_upload(
    data: bytes, content_type: str | None, policy: FetchPolicy, *, param: str = "image"
) -> ImageInput:
    """A multipart file part to a checked image; the declared type must not contradict an image."""
    if content_type:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type and not (media_type.startswith("image/") or media_type == "application/octet-stream"):
            raise _refuse(f"the uploaded file has content type {media_type}, not an image", param)
    return check_image(data, policy, param=param)


# --- URLs ---------------------------------------------------------------------------------------


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to, in the resolver's order, without duplicates.

    Raises OSError (``socket.gaierror``) when the name does not resolve.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: dict[IPAddress, None] = {}
    for family, _type, _proto, _canon, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            seen.setdefault(parse_address(str(sockaddr[0])), None)
    return list(seen)


def _parse_url(value: str, param: str) -> URL:
    if len(value) > MAX_URL_LENGTH:
        raise _refuse(f"image URL is longer than {MAX_URL_LENGTH} characters", param)
    try:
        url = URL(value.strip())
        scheme = url.scheme.lower()
        host = url.raw_host
        _ = url.port
    except (ValueError, TypeError):
        raise _refuse("image URL refused: it is not a valid URL", param) from None
    if not scheme:
        raise _refuse("image URL refused: it is not an absolute http or https URL", param)
    if scheme not in ("http", "https"):
        raise _refuse(f"image URL refused: scheme {scheme} is not allowed", param)
    if not host:
        raise _refuse("image URL refused: it has no host", param)
    if url.raw_user is not None or url.raw_password is not None:
        raise _refuse("image URL refused: credentials in the URL are not allowed", param)
    return url


def _is_literal(host: str) -> bool:
    try:
        parse_address(host)
    except ValueError:
        return False
    return True


async def _vet(url: URL, policy: FetchPolicy, param: str) -> list[IPAddress]:
    """The addresses this URL may be fetched from: all of the host's addresses, or a refusal."""
    host = str(url.raw_host)
    literal = parse_address(host) if _is_literal(host) else None
    if literal is not None:
        reason = refusal(literal, policy.networks)
        if reason:
            raise _refuse(f"image URL refused: {reason}", param)
        return [literal]
    try:
        addresses = await resolve_host(host, url.port or 0)
    except (OSError, UnicodeError):
        raise _refuse(f"image URL refused: host {host} could not be resolved", param) from None
    if not addresses:
        raise _refuse(f"image URL refused: host {host} has no address", param)
    for ip in addresses:
        category = classify(ip)
        if category != "public" and not is_allowed(ip, policy.networks):
            raise _refuse(f"image URL refused: {host} resolves to {ip}, {describe(category)}", param)
    return addresses


def _target(url: URL, ip: IPAddress) -> URL:
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return URL.build(
        scheme=url.scheme.lower(),
        host=host,
        port=url.explicit_port,
        path=url.raw_path or "/",
        query_string=url.raw_query_string,
        encoded=True,
    )


async def _connect(
    http: aiohttp.ClientSession, url: URL, addresses: list[IPAddress], policy: FetchPolicy, param: str
) -> aiohttp.ClientResponse:
    """GET the URL from the first vetted address that accepts a connection."""
    host = str(url.raw_host)
    sni = host if url.scheme.lower() == "https" and not _is_literal(host) else None
    headers = {
        "Host": str(url.raw_authority),
        "Accept": "image/*",
        "Accept-Encoding": "identity",
        "User-Agent": "omnirelay-image-fetch/1",
    }
    failure = ""
    for ip in addresses:
        try:
            return await http.request(
                "GET",
                _target(url, ip),
                headers=headers,
                allow_redirects=False,
                auto_decompress=False,
                raise_for_status=False,
                server_hostname=sni,
                # fetch_image's own deadline covers the whole exchange, hops and body included
                timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_connect=None, sock_read=None),
            )
        except aiohttp.ClientConnectorCertificateError:
            failure = f"the TLS certificate of {host} could not be verified"
        except aiohttp.ClientSSLError:
            failure = f"the TLS handshake with {host} failed"
        except aiohttp.ClientConnectorError:
            failure = f"connection to {ip} failed"
        except aiohttp.ClientError as exc:
            failure = f"{type(exc).__name__} from {ip}"
    raise _refuse(f"image URL could not be fetched: {failure}", param)


async def _read_body(resp: aiohttp.ClientResponse, policy: FetchPolicy, param: str) -> bytes:
    media_type = resp.content_type.lower()
    if not (media_type.startswith("image/") or media_type == "application/octet-stream"):
        raise _refuse(f"image URL answered with content type {media_type}, not an image", param)
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise _refuse(f"image URL answered with content encoding {encoding}, not identity", param)
    too_large = f"image is larger than the {policy.max_bytes} byte limit"
    if resp.content_length is not None and resp.content_length > policy.max_bytes:
        raise _refuse(too_large, param)
    body = bytearray()
    try:
        async for chunk in resp.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > policy.max_bytes:
                raise _refuse(too_large, param)
    except aiohttp.ClientError as exc:
        raise _refuse(f"image URL could not be fetched: {type(exc).__name__} while reading", param) from None
    return bytes(body)


async def _download(url: URL, http: aiohttp.ClientSession, policy: FetchPolicy, param: str) -> bytes:
    for hop in range(policy.max_redirects + 1):
        addresses = await _vet(url, policy, param)
        resp = await _connect(http, url, addresses, policy, param)
        try:
            if resp.status in _REDIRECTS:
                if hop == policy.max_redirects:
                    raise _refuse(f"image URL redirected more than {policy.max_redirects} times", param)
                location = resp.headers.get("Location")
                if not location:
                    raise _refuse(f"image URL answered HTTP {resp.status} without a Location", param)
                try:
                    next_url = url.join(URL(location))
                except ValueError:
                    raise _refuse("image URL redirected to an invalid URL", param) from None
                url = _parse_url(str(next_url), param)
                continue
            if resp.status != 200:
                raise _refuse(f"image URL answered HTTP {resp.status}", param)
            return await _read_body(resp, policy, param)
        finally:
            resp.close()  # never return a half-read connection to the pool
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


async def fetch_image(
    url: str, *, http: aiohttp.ClientSession, policy: FetchPolicy, param: str = "image"
) -> ImageInput:
    """Download an image from an untrusted http(s) URL, under every guard of this module."""
    parsed = _parse_url(url, param)
    try:
        async with asyncio.timeout(policy.timeout_s):
            data = await _download(parsed, http, policy, param)
    except TimeoutError:
        raise _refuse(f"image URL did not answer within {policy.timeout_s:g} s", param) from None
    return await check_image_async(data, policy, param=param)


async def load_image(
    value: str, *, http: aiohttp.ClientSession, policy: FetchPolicy, param: str = "image"
) -> ImageInput:
    """An image reference as clients send it in JSON: a data URL or an http(s) URL."""
    if value[:5].lower() == "data:":
        if len(value) > _THREAD_DECODE_BYTES:
            return await asyncio.to_thread(decode_data_url, value, policy, param=param)
        return decode_data_url(value, policy, param=param)
    return await fetch_image(value, http=http, policy=policy, param=param)


async def vet_outbound_url(
    value: str, policy: FetchPolicy, *, param: str, what: str
) -> tuple[URL, list[IPAddress]]:
    """The same address rules for any URL the gateway calls on a client's behalf (e.g. webhooks).

    Returns the parsed URL and the vetted addresses to connect to; refusals say ``what`` was refused.
    """
    try:
        url = _parse_url(value, param)
        return url, await _vet(url, policy, param)
    except UnprocessableEntity as exc:
        raise UnprocessableEntity(exc.message.replace("image URL", what), param=param) from None


def pinned_target(url: URL, ip: IPAddress) -> URL:
    """``url`` with its host replaced by a vetted address (send the original Host header with it)."""
    return _target(url, ip)
