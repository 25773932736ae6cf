"""A real S3-compatible server for tests: moto in server mode, in a subprocess, with IAM auth on."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

from omnirelay.store.s3 import sign_v4


@dataclass(frozen=True)
class MotoS3:
    endpoint: str
    access_key: str
    secret_key: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _post(url: str, body: bytes, headers: dict[str, str]) -> str:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return str(resp.read().decode())


def _iam(endpoint: str, action: str, **params: str) -> str:
    """One IAM query-API call, signed (moto routes by the signature's service)."""
    body = urlencode({"Action": action, "Version": "2010-05-08", **params}).encode()
    headers = sign_v4(
        method="POST",
        url=endpoint + "/",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        payload_hash=hashlib.sha256(body).hexdigest(),
        access_key="AKIASETUPSETUPSETUP0",
        secret_key="setup",
        region="us-east-1",
        service="iam",
    )
    return _post(endpoint + "/", body, headers)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.05)
        # A user with full S3 rights and its own key pair; then authentication goes on.
        _iam(endpoint, "CreateUser", UserName="omnirelay")
        _iam(
            endpoint,
            "PutUserPolicy",
            UserName="omnirelay",
            PolicyName="s3",
            PolicyDocument='{"Version":"2012-10-17","Statement":'
            '[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}',
        )
        created = _iam(endpoint, "CreateAccessKey", UserName="omnirelay")
        access_key = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", created)
        secret_key = re.search(r"<SecretAccessKey>([^<]+)</SecretAccessKey>", created)
        assert access_key and secret_key
        _post(f"{endpoint}/moto-api/reset-auth", b"0", {"Content-Type": "text/plain"})
        yield MotoS3(endpoint, access_key.group(1), secret_key.group(1))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()
