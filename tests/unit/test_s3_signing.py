"""omnirelay.store.s3.sign_v4: AWS Signature Version 4, checked against AWS's published examples.

The expected values are the ones in AWS's documentation: the S3 "Signature Calculations for the
Authorization Header" examples (access key AKIAIOSFODNN7EXAMPLE, bucket examplebucket, 24 May
2013), the general reference's signing-key derivation example, and the get-vanilla case of the
SigV4 test suite. botocore (installed with moto) is a second, independent implementation to agree
with on inputs that the examples do not exercise.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

from omnirelay.store.s3 import (
    EMPTY_SHA256,
    canonical_headers,
    canonical_query,
    canonical_request,
    sign_v4,
    signing_key,
    string_to_sign,
    uri_encode,
)

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
MAY_24_2013 = dt.datetime(2013, 5, 24, tzinfo=dt.UTC)
HOST = "https://examplebucket.s3.amazonaws.com"


def signature(headers: dict[str, str]) -> str:
    return headers["Authorization"].rsplit("Signature=", 1)[1]


def test_signing_key_derivation_example() -> None:
    key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_s3_example_get_object() -> None:
    headers = sign_v4(
        method="GET",
        url=f"{HOST}/test.txt",
        headers={"Range": "bytes=0-9"},
        payload_hash=EMPTY_SHA256,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region="us-east-1",
        now=MAY_24_2013,
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
    assert headers["Host"] == "examplebucket.s3.amazonaws.com"
    assert headers["X-Amz-Date"] == "20130524T000000Z"
    assert headers["X-Amz-Content-Sha256"] == EMPTY_SHA256
    assert headers["Range"] == "bytes=0-9"


def test_s3_example_get_object_intermediate_values() -> None:
    headers = {
        "Host": "examplebucket.s3.amazonaws.com",
        "Range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY_SHA256,
        "x-amz-date": "20130524T000000Z",
    }
    canonical, signed = canonical_request("GET", "/test.txt", [], headers, EMPTY_SHA256)
    assert canonical == (
        "GET\n/test.txt\n\n"
        "host:examplebucket.s3.amazonaws.com\n"
        "range:bytes=0-9\n"
        f"x-amz-content-sha256:{EMPTY_SHA256}\n"
        "x-amz-date:20130524T000000Z\n"
        "\n"
        "host;range;x-amz-content-sha256;x-amz-date\n"
        f"{EMPTY_SHA256}"
    )
    assert signed == "host;range;x-amz-content-sha256;x-amz-date"
    text = string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", canonical)
    assert text.split("\n")[:3] == [
        "AWS4-HMAC-SHA256",
        "20130524T000000Z",
        "20130524/us-east-1/s3/aws4_request",
    ]
    assert text.split("\n")[3] == hashlib.sha256(canonical.encode()).hexdigest()


def test_s3_example_put_object() -> None:
    body = b"Welcome to Amazon S3."
    headers = sign_v4(
        method="PUT",
        url=f"{HOST}/test$file.text",
        headers={"Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"},
        payload_hash=hashlib.sha256(body).hexdigest(),
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region="us-east-1",
        now=MAY_24_2013,
    )
    assert (
        hashlib.sha256(body).hexdigest() == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    )
    assert (
        "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
        in (headers["Authorization"])
    )
    assert signature(headers) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"


def test_s3_example_get_bucket_lifecycle() -> None:
    headers = sign_v4(
        method="GET",
        url=f"{HOST}/?lifecycle",
        headers={},
        payload_hash=EMPTY_SHA256,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region="us-east-1",
        now=MAY_24_2013,
    )
    assert signature(headers) == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"


def test_s3_example_list_objects() -> None:
    headers = sign_v4(
        method="GET",
        url=f"{HOST}/?max-keys=2&prefix=J",
        headers={},
        payload_hash=EMPTY_SHA256,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region="us-east-1",
        now=MAY_24_2013,
    )
    assert signature(headers) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"


def test_test_suite_get_vanilla() -> None:
    # A non-S3 service: no X-Amz-Content-Sha256 header, only host and x-amz-date signed.
    headers = sign_v4(
        method="GET",
        url="https://example.amazonaws.com/",
        headers={},
        payload_hash=EMPTY_SHA256,
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        service="service",
        now=dt.datetime(2015, 8, 30, 12, 36, tzinfo=dt.UTC),
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )
    assert "X-Amz-Content-Sha256" not in headers


def test_uri_encode() -> None:
    assert uri_encode("a b/c~d-e_f.g$h+i=j&k") == "a%20b%2Fc~d-e_f.g%24h%2Bi%3Dj%26k"
    assert uri_encode("/bucket/a b/ü", keep_slash=True) == "/bucket/a%20b/%C3%BC"


def test_canonical_query_sorted_and_encoded() -> None:
    assert canonical_query([("prefix", "J"), ("max-keys", "2")]) == "max-keys=2&prefix=J"
    assert canonical_query([("lifecycle", "")]) == "lifecycle="
    assert canonical_query([("b", "x y"), ("a", "2"), ("a", "1")]) == "a=1&a=2&b=x%20y"
    assert canonical_query([]) == ""


def test_canonical_headers_trim_and_lowercase() -> None:
    block, signed = canonical_headers({"X-Amz-Meta-Note": "  two   spaces  ", "Host": "h"})
    assert block == "host:h\nx-amz-meta-note:two spaces\n"
    assert signed == "host;x-amz-meta-note"


def test_headers_given_are_kept_not_duplicated() -> None:
    headers = sign_v4(
        method="GET",
        url="http://127.0.0.1:9000/bucket/key",
        headers={"host": "custom:1", "x-amz-date": "20200101T000000Z"},
        payload_hash=EMPTY_SHA256,
        access_key="AK",
        secret_key="SK",
        region="eu-west-1",
        now=MAY_24_2013,
    )
    assert headers["host"] == "custom:1" and "Host" not in headers
    assert headers["x-amz-date"] == "20200101T000000Z" and "X-Amz-Date" not in headers
    # the credential scope follows the clock given; the header set is the caller's
    assert "Credential=AK/20130524/eu-west-1/s3/aws4_request" in headers["Authorization"]


def test_host_includes_a_non_default_port() -> None:
    headers = sign_v4(
        method="GET",
        url="http://127.0.0.1:9000/bucket/key",
        headers={},
        payload_hash=EMPTY_SHA256,
        access_key="AK",
        secret_key="SK",
        region="us-east-1",
    )
    assert headers["Host"] == "127.0.0.1:9000"
    assert headers["X-Amz-Date"].endswith("Z") and len(headers["X-Amz-Date"]) == 16


def _botocore_signature(
    method: str, url: str, headers: dict[str, str], body: bytes, region: str, service: str
) -> str:
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    request.context["timestamp"] = headers["X-Amz-Date"]
    credentials = Credentials("AKIDEXAMPLE", "secret/with+odd=chars")
    auth = (S3SigV4Auth if service == "s3" else SigV4Auth)(credentials, service, region)
    canonical = auth.canonical_request(request)
    return str(auth.signature(auth.string_to_sign(request, canonical), request))


@pytest.mark.parametrize(
    ("method", "url", "extra", "body", "region", "service"),
    [
        (
            "PUT",
            "http://127.0.0.1:9000/bucket/20260101/abc.png",
            {"Content-Type": "image/png"},
            b"\x89PNG",
            "us-east-1",
            "s3",
        ),
        (
            "GET",
            "https://s3.eu-central-1.amazonaws.com/b/pre%20fix/k%C3%BC.jpg",
            {},
            b"",
            "eu-central-1",
            "s3",
        ),
        (
            "DELETE",
            "https://minio.example:443/bucket/a/b/c.bin",
            {"X-Amz-Meta-A": " x  y "},
            b"",
            "auto",
            "s3",
        ),
        (
            "GET",
            "http://localhost:5000/bucket?list-type=2&prefix=a%2Fb&max-keys=10",
            {},
            b"",
            "us-west-2",
            "s3",
        ),
        (
            "POST",
            "http://127.0.0.1:5000/",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"Action=ListUsers",
            "us-east-1",
            "iam",
        ),
    ],
)
def test_agrees_with_botocore(
    method: str, url: str, extra: dict[str, str], body: bytes, region: str, service: str
) -> None:
    headers = sign_v4(
        method=method,
        url=url,
        headers=extra,
        payload_hash=hashlib.sha256(body).hexdigest(),
        access_key="AKIDEXAMPLE",
        secret_key="secret/with+odd=chars",
        region=region,
        service=service,
        now=dt.datetime(2026, 11, 21, 10, 30, 5, tzinfo=dt.UTC),
    )
    signed = {k: v for k, v in headers.items() if k != "Authorization"}
    assert signature(headers) == _botocore_signature(method, url, signed, body, region, service)
