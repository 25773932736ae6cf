"""The 302 dashboard API on an account's own key."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import GatewayFactory, sim_channel
from tests.support.server import HTTP, GatewayServer
from tests.upstreams.openai import OpenAISim

SETTINGS = {
    "api_name": "worker",
    "allow_save_logs": True,
    "allow_manage_key": False,
    "allow_custom_model": False,
    "limit_cost": 2,
    "limit_daily_cost": 0,
    "expired_on": 0,
}


def call(server: GatewayServer, method: str, path: str, key: str, **kwargs: Any) -> dict[str, Any]:
    resp = HTTP.request(method, server.base_url + path, headers={"Authorization": f"Bearer {key}"}, **kwargs)
    body: dict[str, Any] = resp.json()
    body["_status"] = resp.status_code
    return body


def test_manage_flag_is_required(gateway_factory: GatewayFactory) -> None:
    server = gateway_factory([])
    _, key = server.account_key(allow_manage_key=False)
    body = call(server, "GET", "/dashboard/balance", key)
    assert body["_status"] == 403 and body["code"] == -10009
    assert call(server, "GET", "/dashboard/balance", "sk-bad")["_status"] == 401


def test_balance_prices_and_key_lifecycle(gateway_factory: GatewayFactory, sim: OpenAISim) -> None:
    server = gateway_factory([sim_channel(sim)])
    account_id, key = server.account_key("7.25", allow_manage_key=True, api_name="admin")
    assert call(server, "GET", "/dashboard/balance", key)["data"] == {"balance": "7.25"}

    prices = call(server, "GET", "/dashboard/prices", key, params={"path": "/chat/completions"})
    names = {p["name"]: p for p in prices["data"]}
    assert names["gpt-4o-mini"]["pricing"] == {"input": 0.15, "output": 0.6, "cached_input": 0.075}
    assert names["gpt-4o-mini"]["pricing_suffix"] == "1M tokens"
    assert call(server, "GET", "/dashboard/prices", key, params={"path": "/v1/images"})["data"] == []

    created = call(server, "POST", "/dashboard/api_key", key, json=SETTINGS)
    assert created["code"] == 0
    new_key = created["data"]["api_key"]
    assert isinstance(new_key, str) and new_key.startswith("sk-")
    listed = call(server, "GET", "/dashboard/api_keys", key)["data"]
    assert [k["api_name"] for k in listed] == ["admin", "worker"]
    one = call(server, "GET", "/dashboard/api_key/worker", key)["data"]
    assert one["limit_cost"] == 2 and one["api_key"] != new_key

    updated = call(server, "PUT", "/dashboard/api_key/worker", key, json={"limit_cost": 3.5})
    assert updated["code"] == 0
    assert call(server, "GET", "/dashboard/api_key/worker", key)["data"]["limit_cost"] == 3.5
    # The form with the name in the body, and an expiry in the past disables the key.
    call(
        server,
        "PUT",
        "/dashboard/api_key",
        key,
        json={"api_name": "worker", "expired_on": int(time.time()) - 5},
    )
    chat = server.post_chat(new_key, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})
    assert chat.status_code == 401 and chat.json()["error"]["err_code"] == -10005

    assert call(server, "DELETE", "/dashboard/api_key/worker", key)["code"] == 0
    missing = call(server, "GET", "/dashboard/api_key/worker", key)
    assert missing["_status"] == 404 and missing["code"] == -10010
    bad = call(server, "POST", "/dashboard/api_key", key, json={"api_name": "", "limit_cost": -1})
    assert bad["_status"] == 400
    assert account_id > 0


def test_records_and_request_log(gateway_factory: GatewayFactory, sim: OpenAISim) -> None:
    server = gateway_factory([sim_channel(sim)])
    _, key = server.account_key("5", allow_manage_key=True)
    _, other = server.account_key("5", allow_manage_key=True)
    ids = []
    for i in range(5):
        resp = server.post_chat(
            key, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"n {i}"}]}
        )
        ids.append(resp.headers["request-id"])
    failed = server.post_chat(key, {"model": "gpt-4o-mini", "messages": "bad"})
    assert failed.status_code == 400
    record = call(server, "GET", f"/dashboard/record/{ids[0]}", key)["data"]
    assert record["input_token"] == 5 and record["output_token"] == 3
    # Another account's key cannot read this account's records.
    assert call(server, "GET", f"/dashboard/record/{ids[0]}", other)["_status"] == 404
    page = call(server, "GET", "/dashboard/api-record", key, params={"page": 2, "limit": 2})
    assert page["pagination"] == {
        "total": 5,
        "total_page": 3,
        "cur_page": 2,
        "pre_page": 1,
        "next_page": 3,
        "offset": 2,
        "limit": 2,
    }
    assert len(page["items"]) == 2
    assert call(server, "GET", "/dashboard/api-record", key, params={"limit": 51})["_status"] == 400
    future = call(server, "GET", "/dashboard/api-record", key, params={"start_time": int(time.time()) + 100})
    assert future["items"] == []
