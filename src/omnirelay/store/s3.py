"""S3-compatible object storage (AWS S3, MinIO, Cloudflare R2, Backblaze B2, ...) for the file store.

Three object calls (PUT, GET, DELETE) over the shared aiohttp session, path-style URLs
(``<endpoint>/<bucket>/<prefix><key>``), signed with AWS Signature Version 4. The signer is a pure
function of its inputs (``sign_v4``), tested against AWS's published examples and against a real
S3-compatible server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from omnirelay.store.files import (
    FileStoreError,
    StoredFile,
    is_valid_key,
    media_type_of_key,
    new_key,
    normalize_media_type,
)

ALGORITHM: Final = "AWS4-HMAC-SHA256"
EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
_SPACES: Final = re.compile(r"\s+")
_HASH_IN_THREAD_BYTES: Final = 1024 * 1024


# --- Signature Version 4 (pure) -----------------------------------------------------------------


def uri_encode(value: str, *, keep_slash: bool = False) -> str:
    """RFC 3986 percent-encoding of everything but the unreserved characters, as SigV4 wants it."""
    return quote(value, safe="-_.~/" if keep_slash else "-_.~")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((uri_encode(k), uri_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """(the canonical header block, the signed-headers list) of the headers to sign."""
    rows = sorted((name.strip().lower(), _SPACES.sub(" ", value.strip())) for name, value in headers.items())
    block = "".join(f"{name}:{value}\n" for name, value in rows)
    return block, ";".join(name for name, _ in rows)


def canonical_request(
    method: str, path: str, query: Iterable[tuple[str, str]], headers: Mapping[str, str], payload_hash: str
) -> tuple[str, str]:
    """(canonical request, signed headers). ``path`` is the decoded path; S3 encodes it once."""
    block, signed = canonical_headers(headers)
    text = "\n".join(
        [
            method.upper(),
            uri_encode(path or "/", keep_slash=True),
            canonical_query(query),
            block,
            signed,
            payload_hash,
        ]
    )
    return text, signed


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def sign_v4(
    *,
    method: str,
    url: str | URL,
    headers: Mapping[str, str],
    payload_hash: str,
    access_key: str,
    secret_key: str,
    region: str,
    service: str = "s3",
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """The headers to send for a SigV4-signed request: ``headers`` plus Host (when absent),
    X-Amz-Date, X-Amz-Content-Sha256 (S3 only) and Authorization. Every returned header is signed.
    """
    target = URL(url) if isinstance(url, str) else url
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    amz_date = f"{moment:%Y%m%dT%H%M%SZ}"
    date = amz_date[:8]
    out: dict[str, str] = {}
    names = {name.lower() for name in headers}
    if "host" not in names:
        out["Host"] = str(target.raw_authority)
    out.update(headers)
    if "x-amz-date" not in names:
        out["X-Amz-Date"] = amz_date
    if service == "s3" and "x-amz-content-sha256" not in names:
        out["X-Amz-Content-Sha256"] = payload_hash
    canonical, signed = canonical_request(method, target.path, target.query.items(), out, payload_hash)
    scope = f"{date}/{region}/{service}/aws4_request"
    signature = hmac.new(
        signing_key(secret_key, date, region, service),
        string_to_sign(amz_date, scope, canonical).encode(),
        hashlib.sha256,
    ).hexdigest()
    out["Authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    )
    return out


# --- the store ----------------------------------------------------------------------------------

_ERROR_CODE = re.compile(r"<Code>([^<]{1,200})</Code>")
_ERROR_MESSAGE = re.compile(r"<Message>([^<]{1,500})</Message>")


class S3FileStore:
    """The file store on an S3-compatible bucket, over the gateway's shared aiohttp session."""

    def __init__(
        self,
        endpoint_url: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        prefix: str = "",
        *,
        http: aiohttp.ClientSession,
        timeout_s: float = 60.0,
    ) -> None:
        self._endpoint = URL(endpoint_url.rstrip("/"))
        self.bucket = bucket
        self._access_key = access_key
        self._secret_key = secret_key
        self.region = region
        stripped = prefix.strip("/")
        self.prefix = f"{stripped}/" if stripped else ""
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    def __repr__(self) -> str:  # never shows the secret
        return f"S3FileStore({str(self._endpoint)!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _url(self, object_key: str | None = None, query: str | None = None) -> URL:
        path = self._endpoint.path.rstrip("/") + "/" + self.bucket
        if object_key is not None:
            path += "/" + self.prefix + object_key
        url = self._endpoint.with_path(uri_encode(path, keep_slash=True), encoded=True)
        return url.with_query(query) if query else url

    def _clean(self, text: str) -> str:
        return text.replace(self._secret_key, "***") if len(self._secret_key) >= 4 else text

    async def _call(
        self,
        op: str,
        method: str,
        url: URL,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        payload_hash: str | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        if payload_hash is None:
            if len(body) > _HASH_IN_THREAD_BYTES:
                payload_hash = await asyncio.to_thread(lambda: hashlib.sha256(body).hexdigest())
            else:
                payload_hash = hashlib.sha256(body).hexdigest()
        signed = sign_v4(
            method=method,
            url=url,
            headers=headers or {},
            payload_hash=payload_hash,
            access_key=self._access_key,
            secret_key=self._secret_key,
            region=self.region,
        )
        try:
            async with self._http.request(
                method,
                url,
                data=body if method in ("PUT", "POST") else None,
                headers=signed,
                allow_redirects=False,
                auto_decompress=False,
                raise_for_status=False,
                timeout=self._timeout,
            ) as resp:
                return resp.status, CIMultiDict(resp.headers), await resp.read()
        except TimeoutError:
            raise FileStoreError(f"S3 {op} failed: {self._endpoint} did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise FileStoreError(
                f"S3 {op} failed: could not reach {self._endpoint} ({type(exc).__name__})"
            ) from None

    def _error(self, op: str, status: int, body: bytes) -> FileStoreError:
        text = body[:4096].decode("utf-8", "replace")
        code_match = _ERROR_CODE.search(text)
        message_match = _ERROR_MESSAGE.search(text)
        code = code_match.group(1) if code_match else None
        detail = f"HTTP {status}" + (f" {code}" if code else "")
        if message_match:
            detail += f": {message_match.group(1)}"
        return FileStoreError(self._clean(f"S3 {op} failed: {detail}"), code=code, status=status)

    async def put(self, data: bytes, media_type: str) -> str:
        key = new_key(media_type)
        status, _, body = await self._call(
            f"PUT {self.bucket}/{self.prefix}{key}",
            "PUT",
            self._url(key),
            body=data,
            headers={"Content-Type": normalize_media_type(media_type)},
        )
        if status != 200:
            raise self._error(f"PUT {self.bucket}/{self.prefix}{key}", status, body)
        return key

    async def get(self, key: str) -> StoredFile | None:
        if not is_valid_key(key):
            return None
        op = f"GET {self.bucket}/{self.prefix}{key}"
        status, headers, body = await self._call(op, "GET", self._url(key), payload_hash=EMPTY_SHA256)
        if status == 404:
            return None
        if status != 200:
            raise self._error(op, status, body)
        token = key.rsplit("/", 1)[-1].split(".", 1)[0]
        return StoredFile(
            data=body,
            media_type=headers.get("Content-Type") or media_type_of_key(key),
            size=len(body),
            etag=headers.get("ETag") or f'"{token}"',
        )

    async def delete(self, key: str) -> None:
        if not is_valid_key(key):
            return
        op = f"DELETE {self.bucket}/{self.prefix}{key}"
        status, _, body = await self._call(op, "DELETE", self._url(key), payload_hash=EMPTY_SHA256)
        if status not in (200, 204, 404):
            raise self._error(op, status, body)

    async def create_bucket(self) -> None:
        """Create the bucket (setup and tests); one that this account already owns is fine."""
        body = b""
        if self.region != "us-east-1":
            body = (
                '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<LocationConstraint>{self.region}</LocationConstraint></CreateBucketConfiguration>"
            ).encode()
        op = f"CREATE BUCKET {self.bucket}"
        status, _, answer = await self._call(op, "PUT", self._url(), body=body)
        if status == 200:
            return
        error = self._error(op, status, answer)
        if error.code != "BucketAlreadyOwnedByYou":
            raise error

    async def close(self) -> None:
        return None  # the session is the gateway's
