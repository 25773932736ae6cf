"""Bad input, auth, money limits and secrets: every failure is a clear 4xx/5xx in the route's dialect."""

from __future__ import annotations

import logging
import time

import openai
import pytest

from tests.conftest import GatewayFactory, sim_channel
from tests.support.server import HTTP, GatewayServer
from tests.upstreams.openai import OpenAISim, mask_key

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def server(gateway_factory: GatewayFactory, sim: OpenAISim) -> GatewayServer:
    channels = [
        sim_channel(sim),
        sim_channel(sim, "unpriced", models=["sim-model"]),
    ]
    return gateway_factory(channels, max_body_bytes=64 * 1024)


def post(server: GatewayServer, key: str | None, data: bytes | str, **headers: str) -> dict[str, object]:
    if key is not None:
        headers.setdefault("Authorization", f"Bearer {key}")
    resp = HTTP.post(f"{server.base_url}/v1/chat/completions", content=data, headers=headers)
    body = resp.json()
    assert "request-id" in resp.headers
    return {"status": resp.status_code, **body["error"]}


@pytest.mark.parametrize(
    ("data", "param", "fragment"),
    [
        (b"{not json", None, "could not parse the JSON"),
        (b"", None, "empty"),
        (b"[1, 2]", None, "JSON object"),
        (b'{"messages": []}', "model", "model"),
        (b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}', "model", "model"),
        (b'{"model": "gpt-4o-mini"}', "messages", "messages"),
        (b'{"model": "gpt-4o-mini", "messages": "hi"}', "messages", "messages"),
        (b'{"model": "gpt-4o-mini", "messages": [{"content": "x"}]}', "messages[0]", "role"),
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "user"}], "stream": "yes"}', "stream", "boolean"),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user"}], "max_tokens": -1}',
            "max_tokens",
            "max_tokens",
        ),
    ],
)
def test_malformed_requests_get_openai_400s(
    server: GatewayServer, data: bytes, param: str | None, fragment: str
) -> None:
    _, key = server.account_key()
    error = post(server, key, data, **{"content-type": "application/json"})
    assert error["status"] == 400
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert fragment in str(error["message"])


def test_unknown_model_is_404_and_unpriced_model_is_refused(server: GatewayServer, sim: OpenAISim) -> None:
    _, key = server.account_key()
    client = openai.OpenAI(api_key=key, base_url=server.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-model", messages=MSG)  # type: ignore[arg-type]
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.PermissionDeniedError) as unpriced:
        client.chat.completions.create(model="sim-model", messages=MSG)  # type: ignore[arg-type]
    assert "no price" in unpriced.value.message
    assert sim.chat_requests == [], "neither call may reach the upstream"


def test_body_over_the_limit_is_413(server: GatewayServer) -> None:
    _, key = server.account_key()
    big = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' + b"x" * 70_000 + b'"}]}'
    assert post(server, key, big)["status"] == 413


def test_wrong_method_and_unknown_route(server: GatewayServer) -> None:
    resp = HTTP.get(f"{server.base_url}/v1/chat/completions")
    assert resp.status_code == 405 and resp.json()["error"]["code"] == "method_not_allowed"
    resp = HTTP.get(f"{server.base_url}/302/nothing-here")
    assert resp.status_code == 404 and resp.json()["error"]["err_code"] == -10010
    assert "request-id" in resp.headers


@pytest.mark.parametrize(
    ("headers", "message"),
    [({}, "Missing 302 Apikey"), ({"Authorization": "Bearer sk-wrong"}, "Invalid API Key")],
)
def test_auth_failures(server: GatewayServer, headers: dict[str, str], message: str) -> None:
    error = post(server, None, b'{"model": "gpt-4o-mini", "messages": []}', **headers)
    assert error["status"] == 401
    assert error["err_code"] == -10001 and error["message"] == message
    assert {"message_cn", "message_en", "message_jp"} <= set(error)


@pytest.mark.parametrize("header", ["x-api-key", "x-goog-api-key", "mj-api-secret"])
def test_key_header_aliases(server: GatewayServer, header: str) -> None:
    _, key = server.account_key()
    resp = server.post_chat(key, {"model": "gpt-4o-mini", "messages": MSG}, **{header: key})
    assert resp.status_code == 200, resp.text


def test_expired_key(server: GatewayServer) -> None:
    _, key = server.account_key(expired_on=int(time.time()) - 1)
    error = post(server, key, b'{"model": "gpt-4o-mini", "messages": [{"role": "user"}]}')
    assert error["status"] == 401 and error["err_code"] == -10005


def test_insufficient_balance(server: GatewayServer, sim: OpenAISim) -> None:
    _, key = server.account_key("0")
    client = openai.OpenAI(api_key=key, base_url=server.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG)  # type: ignore[arg-type]
    assert info.value.status_code == 402
    body = info.value.body
    assert isinstance(body, dict) and body["err_code"] == -10004
    assert sim.chat_requests == []


def test_key_total_and_daily_limits(server: GatewayServer) -> None:
    account_id = server.create_account("10")
    total = server.create_key(account_id, api_name="total", limit_cost=0.000001)
    daily = server.create_key(account_id, api_name="daily", limit_daily_cost="0.000001")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one two three four five six"}]}
    for key, code in ((total, -10006), (daily, -10007)):
        assert server.post_chat(key, body).status_code == 200  # spends past the tiny limit once
        resp = server.post_chat(key, body)
        assert resp.status_code == 402
        assert resp.json()["error"]["err_code"] == code


def test_upstream_secrets_never_leak(
    gateway_factory: GatewayFactory, sim: OpenAISim, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-live-upstream-SECRET-0123456789"
    server = gateway_factory([sim_channel(sim, api_key=secret)])
    _, key = server.account_key()
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    body = {"model": "gpt-4o-mini", "messages": MSG}
    # The simulator rejects the key and echoes a masked form of it, as OpenAI does.
    resp = server.post_chat(key, body)
    texts.append(resp.text + str(resp.headers))
    assert resp.status_code == 502
    sim.api_keys.add(secret)
    for status in (400, 404, 422, 500, 429):
        sim.config.fail_next = [{"status": status, "body": {"error": {"message": f"bad key {secret}"}}}]
        resp = server.post_chat(key, body)
        texts.append(resp.text + str(resp.headers))
    resp = server.admin("GET", "/admin/channels/sim")
    texts.append(resp.text)
    texts.append(server.admin("GET", "/admin/channels").text)
    texts.append(caplog.text)
    for text in texts:
        assert secret not in text
        assert mask_key(secret) not in text
        assert secret[:10] not in text
