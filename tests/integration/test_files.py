"""omnirelay.store.files: one storage suite, run against a local directory and a real S3 server.

The S3 side is moto in server mode, in a subprocess, with IAM authentication switched on after
setup: every request the store makes must carry a SigV4 signature that moto (through botocore)
recomputes and accepts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image
from pydantic import ValidationError

from omnirelay.store.files import (
    KEY_PATTERN,
    FileStore,
    FileStoreError,
    LocalFileStore,
    StorageSettings,
    build_file_store,
    is_valid_key,
    new_key,
    normalize_media_type,
)
from omnirelay.store.s3 import S3FileStore
from tests.support.moto import MotoS3, free_port


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def new_bucket_store(
    moto_s3: MotoS3, http: aiohttp.ClientSession, *, prefix: str = "", secret: str | None = None
) -> S3FileStore:
    bucket = f"omnirelay-{uuid.uuid4().hex[:12]}"
    store = S3FileStore(
        moto_s3.endpoint, bucket, moto_s3.access_key, moto_s3.secret_key, prefix=prefix, http=http
    )
    await store.create_bucket()
    if secret is None:
        return store
    return S3FileStore(moto_s3.endpoint, bucket, moto_s3.access_key, secret, prefix=prefix, http=http)


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, http: aiohttp.ClientSession
) -> AsyncIterator[FileStore]:
    if request.param == "local":
        made: FileStore = LocalFileStore(tmp_path / "files")
    else:
        made = await new_bucket_store(request.getfixturevalue("moto_s3"), http)
    try:
        yield made
    finally:
        await made.close()


def picture(fmt: str, size: tuple[int, int] = (96, 64)) -> bytes:
    buf = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(buf, fmt)
    return buf.getvalue()


# --- the shared suite ---------------------------------------------------------------------------


async def test_round_trip_of_a_real_image(store: FileStore) -> None:
    data = picture("PNG")
    key = await store.put(data, "image/png")
    stored = await store.get(key)
    assert stored is not None
    assert (stored.data, stored.media_type, stored.size) == (data, "image/png", len(data))
    assert stored.etag.startswith('"') and stored.etag.endswith('"') and len(stored.etag) > 2
    with Image.open(io.BytesIO(stored.data)) as image:
        assert (image.format, image.size) == ("PNG", (96, 64))


@pytest.mark.parametrize(
    ("fmt", "declared", "extension", "served"),
    [
        ("JPEG", "image/jpeg", "jpg", "image/jpeg"),
        ("JPEG", "image/jpg", "jpg", "image/jpeg"),
        ("WEBP", "image/webp", "webp", "image/webp"),
        ("GIF", "image/gif", "gif", "image/gif"),
        ("PNG", "IMAGE/PNG; charset=binary", "png", "image/png"),
        ("BMP", "image/bmp", "bin", "application/octet-stream"),
        ("PNG", "text/html", "bin", "application/octet-stream"),
    ],
)
async def test_content_type_preserved(
    store: FileStore, fmt: str, declared: str, extension: str, served: str
) -> None:
    data = picture(fmt)
    key = await store.put(data, declared)
    assert key.endswith("." + extension)
    stored = await store.get(key)
    assert stored is not None and stored.data == data and stored.media_type == served


async def test_video_round_trip(store: FileStore) -> None:
    data = b"\x00\x00\x00\x18ftypmp42" + os.urandom(1000)
    key = await store.put(data, "video/mp4")
    stored = await store.get(key)
    assert key.endswith(".mp4") and stored is not None
    assert (stored.data, stored.media_type) == (data, "video/mp4")


async def test_keys_unguessable_and_date_prefixed(store: FileStore) -> None:
    before = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    keys = await asyncio.gather(*(store.put(b"x", "image/png") for _ in range(40)))
    after = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    assert len(set(keys)) == 40
    for key in keys:
        assert KEY_PATTERN.fullmatch(key), key
        day, name = key.split("/")
        assert day in {before, after}
        assert re.fullmatch(r"[0-9a-f]{32}\.png", name)
    # 128 random bits each: no shared structure beyond the date
    assert len({k.split("/")[1][:8] for k in keys}) > 35


BAD_KEYS = [
    "",
    "/",
    "../etc/passwd",
    "/etc/passwd",
    "20260101/../../etc/passwd",
    "20260101/../secret.png",
    "20260101/" + "a" * 32,
    "20260101/" + "A" * 32 + ".png",
    "20260101/" + "g" * 32 + ".png",
    "20260101/" + "a" * 31 + ".png",
    "20260101/" + "a" * 32 + ".exe",
    "20260101/" + "a" * 32 + ".png/",
    "20260101/" + "a" * 32 + ".png\x00",
    "20260101//" + "a" * 32 + ".png",
    "2026010/" + "a" * 32 + ".png",
    "x20260101/" + "a" * 32 + ".png",
    "20260101\\" + "a" * 32 + ".png",
    "20260101/." + "a" * 32 + ".png.0000.tmp",
    "secret.txt",
]


async def test_unknown_and_bad_keys_are_not_found(store: FileStore) -> None:
    assert await store.get("20260101/" + "0" * 32 + ".png") is None
    assert await store.get(new_key("image/png")) is None
    for key in BAD_KEYS:
        assert not is_valid_key(key), key
        assert await store.get(key) is None, key
        await store.delete(key)  # ignored, never an error


async def test_delete(store: FileStore) -> None:
    key = await store.put(picture("PNG"), "image/png")
    other = await store.put(picture("JPEG"), "image/jpeg")
    await store.delete(key)
    assert await store.get(key) is None
    assert await store.get(other) is not None
    await store.delete(key)  # again: nothing there, no error


async def test_large_file(store: FileStore) -> None:
    data = os.urandom(5 * 1024 * 1024)
    key = await store.put(data, "video/mp4")
    stored = await store.get(key)
    assert stored is not None and stored.size == len(data)
    assert hashlib.sha256(stored.data).digest() == hashlib.sha256(data).digest()


async def test_concurrent_puts(store: FileStore) -> None:
    blobs = [os.urandom(1000 + i * 7000) for i in range(24)]  # some above the 64 KB thread threshold
    keys = await asyncio.gather(*(store.put(blob, "image/webp") for blob in blobs))
    assert len(set(keys)) == len(blobs)
    got = await asyncio.gather(*(store.get(key) for key in keys))
    assert [g.data if g else None for g in got] == blobs


async def test_empty_file(store: FileStore) -> None:
    key = await store.put(b"", "image/png")
    stored = await store.get(key)
    assert stored is not None and (stored.data, stored.size) == (b"", 0)


# --- local only ---------------------------------------------------------------------------------


def _files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def test_local_layout_and_no_leftover_temporary_files(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    keys = [await store.put(os.urandom(size), "image/png") for size in (10, 100_000)]
    for key in keys:
        assert (tmp_path / key).is_file()
    assert _files_under(tmp_path) == sorted(keys)


async def test_local_cannot_reach_files_outside_keys(tmp_path: Path) -> None:
    root = tmp_path / "files"
    (tmp_path / "secret.png").write_bytes(b"secret")
    root.mkdir()
    (root / "secret.txt").write_bytes(b"secret")
    store = LocalFileStore(root)
    assert await store.get("../secret.png") is None
    assert await store.get("secret.txt") is None
    assert (tmp_path / "secret.png").exists() and (root / "secret.txt").exists()


async def test_local_write_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalFileStore(tmp_path)

    def broken_fsync(fd: int) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk on fire"):
        await store.put(b"data", "image/png")
    assert _files_under(tmp_path) == []


# --- S3 only ------------------------------------------------------------------------------------


async def test_s3_wrong_secret(moto_s3: MotoS3, http: aiohttp.ClientSession) -> None:
    secret = "wrong-secret-" + uuid.uuid4().hex
    store = await new_bucket_store(moto_s3, http, secret=secret)
    with pytest.raises(FileStoreError) as info:
        await store.put(b"data", "image/png")
    assert info.value.code == "SignatureDoesNotMatch"
    assert info.value.status == 403
    assert str(info.value).startswith("S3 PUT omnirelay-")
    assert "SignatureDoesNotMatch" in str(info.value)
    for text in (str(info.value), repr(info.value), repr(store)):
        assert secret not in text and moto_s3.secret_key not in text
    with pytest.raises(FileStoreError) as on_get:  # a refused read is an error, not "not found"
        await store.get(new_key("image/png"))
    assert on_get.value.code == "SignatureDoesNotMatch" and secret not in str(on_get.value)


async def test_s3_unknown_access_key(moto_s3: MotoS3, http: aiohttp.ClientSession) -> None:
    store = S3FileStore(moto_s3.endpoint, "omnirelay-any", "AKIANOSUCHKEY0000000", "x" * 40, http=http)
    with pytest.raises(FileStoreError) as info:
        await store.put(b"data", "image/png")
    assert info.value.code == "InvalidAccessKeyId"


async def test_s3_missing_bucket(moto_s3: MotoS3, http: aiohttp.ClientSession) -> None:
    store = S3FileStore(
        moto_s3.endpoint, "omnirelay-missing", moto_s3.access_key, moto_s3.secret_key, http=http
    )
    with pytest.raises(FileStoreError) as info:
        await store.put(b"data", "image/png")
    assert info.value.code == "NoSuchBucket" and info.value.status == 404


async def test_s3_unreachable(http: aiohttp.ClientSession) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = S3FileStore(endpoint, "bucket", "AK", "SK", http=http)
    with pytest.raises(FileStoreError, match=f"could not reach {endpoint}"):
        await store.put(b"data", "image/png")


async def test_s3_objects_as_another_client_sees_them(moto_s3: MotoS3, http: aiohttp.ClientSession) -> None:
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    store = await new_bucket_store(moto_s3, http, prefix="/generated/images/")
    data = picture("WEBP")
    key = await store.put(data, "image/webp")

    def head() -> dict[str, Any]:
        client = boto3.client(
            "s3",
            endpoint_url=moto_s3.endpoint,
            aws_access_key_id=moto_s3.access_key,
            aws_secret_access_key=moto_s3.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        listed = client.list_objects_v2(Bucket=store.bucket)
        answer: dict[str, Any] = client.head_object(Bucket=store.bucket, Key=f"generated/images/{key}")
        answer["keys"] = [o["Key"] for o in listed.get("Contents", [])]
        return answer

    seen = await asyncio.to_thread(head)
    assert seen["keys"] == [f"generated/images/{key}"]
    assert seen["ContentType"] == "image/webp"
    assert seen["ContentLength"] == len(data)
    assert seen["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    stored = await store.get(key)
    assert stored is not None and stored.etag == seen["ETag"]


async def test_s3_create_bucket_is_idempotent(moto_s3: MotoS3, http: aiohttp.ClientSession) -> None:
    store = await new_bucket_store(moto_s3, http)
    await store.create_bucket()


# --- settings and the factory -------------------------------------------------------------------


async def test_build_local_store_defaults_to_data_dir(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    store = build_file_store(StorageSettings(), tmp_path, http)
    assert isinstance(store, LocalFileStore) and store.root == tmp_path / "files"
    key = await store.put(b"abc", "image/gif")
    assert (tmp_path / "files" / key).read_bytes() == b"abc"
    custom = build_file_store(StorageSettings(local_dir=tmp_path / "elsewhere"), tmp_path, http)
    assert isinstance(custom, LocalFileStore) and custom.root == tmp_path / "elsewhere"


async def test_build_s3_store(moto_s3: MotoS3, http: aiohttp.ClientSession) -> None:
    first = await new_bucket_store(moto_s3, http)
    cfg = StorageSettings.model_validate(
        {
            "backend": "s3",
            "s3": {
                "endpoint_url": moto_s3.endpoint + "/",
                "bucket": first.bucket,
                "access_key": moto_s3.access_key,
                "secret_key": moto_s3.secret_key,
            },
        }
    )
    store = build_file_store(cfg, Path("/nonexistent"), http)
    assert isinstance(store, S3FileStore)
    key = await store.put(b"GIF89a", "image/gif")
    stored = await store.get(key)
    assert stored is not None and stored.media_type == "image/gif"
    assert moto_s3.secret_key not in repr(cfg) and moto_s3.secret_key not in cfg.model_dump_json()


def test_storage_settings_validation() -> None:
    with pytest.raises(ValidationError, match=r"storage\.s3 is not configured"):
        StorageSettings(backend="s3")
    s3 = {"endpoint_url": "http://x", "bucket": "ok-bucket", "access_key": "a", "secret_key": "b"}
    for bad in (
        {"endpoint_url": "ftp://x"},
        {"bucket": "Bad_Bucket"},
        {"bucket": "ab"},
        {"prefix": "../up"},
        {"prefix": "a b"},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            StorageSettings.model_validate({"backend": "s3", "s3": {**s3, **bad}})
    with pytest.raises(ValidationError):
        StorageSettings(public_base_url="files.example.com")
    assert (
        StorageSettings(public_base_url="https://cdn.example/x/").public_base_url == "https://cdn.example/x"
    )


def test_key_helpers() -> None:
    moment = dt.datetime(2026, 11, 21, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    key = new_key("image/png", now=moment)
    assert key.startswith("20261122/")  # the UTC date
    assert new_key("application/zip").endswith(".bin")
    assert normalize_media_type(" Image/JPEG ;q=1") == "image/jpeg"
    assert normalize_media_type(None) == "application/octet-stream"
