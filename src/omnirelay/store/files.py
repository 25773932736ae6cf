"""Storage for generated results (images, videos): a local directory or S3-compatible storage.

A stored file is addressed by a key the store makes up: ``YYYYMMDD/<32 hex>.<ext>`` (the UTC date
of the upload, 128 random bits, an extension from a fixed list). Keys are unguessable, so a file's
URL is its capability; anything that does not have exactly that shape is simply not found, which
keeps path tricks (``..``, absolute paths, odd characters) out of both backends.

The stored media type is the one that belongs to the key's extension, so a file is only ever
served as one of a few inert types (never, say, as ``text/html`` because an upstream said so).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, Protocol, runtime_checkable

import aiohttp
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

# media type -> extension; every other media type is stored as ".bin"
EXTENSIONS: Final[dict[str, str]] = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
}
# extension -> the media type a file is served as
MEDIA_TYPES: Final[dict[str, str]] = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "mp4": "video/mp4",
    "bin": "application/octet-stream",
}
KEY_PATTERN: Final = re.compile(r"^[0-9]{8}/[0-9a-f]{32}\.(?:png|jpg|webp|gif|mp4|bin)$")
_THREAD_BYTES: Final = 64 * 1024


class FileStoreError(Exception):
    """A storage backend failed. ``code`` is the backend's error code (e.g. S3's), if it gave one.

    The message never contains a credential.
    """

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(slots=True, frozen=True)
class StoredFile:
    data: bytes
    media_type: str
    size: int
    etag: str  # a quoted HTTP entity tag, ready for an ETag header


@runtime_checkable
class FileStore(Protocol):
    async def put(self, data: bytes, media_type: str) -> str:
        """Store bytes under a new key and return the key."""
        ...

    async def get(self, key: str) -> StoredFile | None:
        """The file, or None when the key is unknown or not a key at all."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the file; unknown and malformed keys are ignored."""
        ...

    async def close(self) -> None: ...


def normalize_media_type(media_type: str | None) -> str:
    """``"Image/PNG; q=1"`` -> ``"image/png"``; the type a file of that kind is stored and served as."""
    base = (media_type or "").split(";", 1)[0].strip().lower()
    return MEDIA_TYPES[EXTENSIONS.get(base, "bin")]


def extension_for(media_type: str | None) -> str:
    base = (media_type or "").split(";", 1)[0].strip().lower()
    return EXTENSIONS.get(base, "bin")


def new_key(media_type: str | None, *, now: dt.datetime | None = None) -> str:
    """A fresh key: ``YYYYMMDD/<secrets.token_hex(16)>.<ext>`` with the UTC date."""
    moment = now or dt.datetime.now(dt.UTC)
    return f"{moment.astimezone(dt.UTC):%Y%m%d}/{secrets.token_hex(16)}.{extension_for(media_type)}"


def is_valid_key(key: str) -> bool:
    return isinstance(key, str) and KEY_PATTERN.fullmatch(key) is not None


def media_type_of_key(key: str) -> str:
    return MEDIA_TYPES[key.rsplit(".", 1)[-1]]


# --- local directory ----------------------------------------------------------------------------


class LocalFileStore:
    """Files under ``root/<key>``, written atomically (temporary file, fsync, rename, fsync dir)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    async def put(self, data: bytes, media_type: str) -> str:
        key = new_key(media_type)
        if len(data) > _THREAD_BYTES:
            await asyncio.to_thread(self._write, key, data)
        else:
            self._write(key, data)
        return key

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(path.parent)

    async def get(self, key: str) -> StoredFile | None:
        if not is_valid_key(key):
            return None
        path = self._path(key)
        try:
            size = path.stat().st_size
            data = await asyncio.to_thread(path.read_bytes) if size > _THREAD_BYTES else path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        # Files are never rewritten under a key, so the key's random part is a stable validator.
        token = key.rsplit("/", 1)[-1].split(".", 1)[0]
        return StoredFile(data=data, media_type=media_type_of_key(key), size=len(data), etag=f'"{token}"')

    async def delete(self, key: str) -> None:
        if not is_valid_key(key):
            return
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self._path(key).unlink()

    async def close(self) -> None:
        return None


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms that cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - filesystems that refuse fsync on a directory
        pass
    finally:
        os.close(fd)


# --- settings and factory -----------------------------------------------------------------------

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9._/-]*$")


class S3Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: SecretStr
    region: str = "us-east-1"
    prefix: str = ""

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_ok(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("storage.s3.endpoint_url must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("bucket")
    @classmethod
    def _bucket_ok(cls, value: str) -> str:
        if not _BUCKET.fullmatch(value) or ".." in value:
            raise ValueError("storage.s3.bucket: 3-63 characters of a-z, 0-9, '.', '-'")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix_ok(cls, value: str) -> str:
        if not _PREFIX.fullmatch(value) or ".." in value.split("/"):
            raise ValueError("storage.s3.prefix: letters, digits, '.', '_', '-', '/' only")
        return value


class StorageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["local", "s3"] = "local"
    local_dir: Path | None = None  # default: <data_dir>/files
    s3: S3Settings | None = None
    public_base_url: str | None = None  # where /files/<key> is reachable, when not the gateway itself

    @model_validator(mode="after")
    def _s3_present(self) -> StorageSettings:
        if self.backend == "s3" and self.s3 is None:
            raise ValueError("storage.backend is s3 but storage.s3 is not configured")
        return self

    @field_validator("public_base_url")
    @classmethod
    def _public_ok(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("storage.public_base_url must start with http:// or https://")
        return value.rstrip("/") if value else value


def build_file_store(cfg: StorageSettings, data_dir: Path, http: aiohttp.ClientSession) -> FileStore:
    if cfg.backend == "s3":
        from omnirelay.store.s3 import S3FileStore

        assert cfg.s3 is not None  # the model validator guarantees it
        return S3FileStore(
            cfg.s3.endpoint_url,
            cfg.s3.bucket,
            cfg.s3.access_key,
            cfg.s3.secret_key.get_secret_value(),
            region=cfg.s3.region,
            prefix=cfg.s3.prefix,
            http=http,
        )
    return LocalFileStore(cfg.local_dir or Path(data_dir) / "files")
