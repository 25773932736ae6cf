"""The operator API: accounts, top-ups, keys, and channels changed at run time and persisted."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import GatewayFactory, sim_channel
from tests.support.server import HTTP
from tests.upstreams.openai import OpenAISim

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_operator_key_is_required(gateway_factory: GatewayFactory) -> None:
    server = gateway_factory([])
    resp = HTTP.post(f"{server.base_url}/admin/accounts", json={"name": "x", "balance": "1"})
    assert resp.status_code == 401 and resp.json()["error"]["err_code"] == -10001
    resp = HTTP.get(f"{server.base_url}/admin/accounts", headers={"Authorization": "Bearer sk-nope"})
    assert resp.status_code == 401
    # A client key is not an operator key.
    _, key = server.account_key()
    assert (
        HTTP.get(f"{server.base_url}/admin/accounts", headers={"Authorization": f"Bearer {key}"}).status_code
        == 401
    )


def test_accounts_and_topups(gateway_factory: GatewayFactory, database_url: str) -> None:
    server = gateway_factory([], database_url=database_url)
    created = server.admin("POST", "/admin/accounts", json={"name": "team", "balance": "12.5"})
    assert created.status_code == 201
    account = created.json()
    assert account["balance"] == "12.5" and isinstance(account["id"], int)
    topped = server.admin("POST", f"/admin/accounts/{account['id']}/topup", json={"amount": "0.000000001"})
    assert topped.json()["balance"] == "12.500000001"
    assert server.admin("GET", f"/admin/accounts/{account['id']}").json()["balance"] == "12.500000001"
    for bad in ({"amount": "-1"}, {"amount": "abc"}, {"amount": 0}, {}, {"amount": "0.0000000001"}):
        resp = server.admin("POST", f"/admin/accounts/{account['id']}/topup", json=bad)
        assert resp.status_code == 400, bad
        assert "amount" in resp.json()["error"]["message"]
    assert server.admin("GET", "/admin/accounts/999").status_code == 404
    assert server.admin("POST", "/admin/accounts/999/topup", json={"amount": "1"}).status_code == 404
    assert server.admin("POST", "/admin/accounts", json={"balance": "1"}).status_code == 400


def test_key_creation_shows_the_key_once_and_stores_a_hash(gateway_factory: GatewayFactory) -> None:
    server = gateway_factory([])
    account_id = server.create_account()
    body = {
        "api_name": "ci",
        "allow_save_logs": True,
        "allow_manage_key": False,
        "allow_custom_model": False,
        "limit_cost": 5,
        "limit_daily_cost": 1.5,
        "expired_on": 0,
    }
    key = server.admin("POST", f"/admin/accounts/{account_id}/api_keys", json=body).json()
    assert key["api_key"].startswith("sk-") and len(key["api_key"]) > 40
    assert key["limit_cost"] == 5 and key["limit_daily_cost"] == 1.5 and key["current_cost"] == 0
    listed = server.admin("GET", f"/admin/accounts/{account_id}/api_keys").json()["data"]
    assert listed[0]["api_key"] != key["api_key"] and "..." in listed[0]["api_key"]
    dupe = server.admin("POST", f"/admin/accounts/{account_id}/api_keys", json=body)
    assert dupe.status_code == 400


def test_channels_change_at_run_time_and_persist(
    gateway_factory: GatewayFactory, sim: OpenAISim, database_url: str
) -> None:
    server = gateway_factory([], database_url=database_url)
    _, key = server.account_key()
    assert server.post_chat(key, BODY).status_code == 404
    channel = sim_channel(sim, "live", models=["gpt-4o"])
    created = server.admin("POST", "/admin/channels", json=channel)
    assert created.status_code == 201
    assert "api_keys" not in created.json() and "sk-upstream-test" not in created.text
    assert server.post_chat(key, BODY).status_code == 200
    # Disable it: the model is gone without a restart.
    resp = server.admin("PUT", "/admin/channels/live", json={**channel, "api_key": None, "enabled": False})
    assert resp.status_code == 200 and resp.json()["enabled"] is False
    assert server.post_chat(key, BODY).status_code == 404
    server.admin("PUT", "/admin/channels/live", json={k: v for k, v in channel.items() if k != "api_key"})
    assert server.post_chat(key, BODY).status_code == 200, "PUT without keys keeps the stored keys"
    assert server.admin("POST", "/admin/channels", json=channel).status_code == 400
    bad = server.admin("POST", "/admin/channels", json={"name": "x y", "base_url": "ftp://a"})
    assert bad.status_code == 400
    # A second gateway on the same database sees the channel.
    other = gateway_factory([], database_url=database_url)
    assert [c["name"] for c in other.admin("GET", "/admin/channels").json()["data"]] == ["live"]
    assert server.admin("DELETE", "/admin/channels/live").status_code == 204
    assert server.admin("GET", "/admin/channels/live").status_code == 404
    assert server.post_chat(key, BODY).status_code == 404


def test_file_channels_and_api_edits(
    gateway_factory: GatewayFactory, sim: OpenAISim, database_url: str
) -> None:
    file_channel = sim_channel(sim, "file", models=["gpt-4o"], weight=1)
    server = gateway_factory([file_channel], database_url=database_url)
    edited = {k: v for k, v in file_channel.items() if k != "api_key"}
    server.admin("PUT", "/admin/channels/file", json={**edited, "weight": 7})
    server.stop()
    # Same file entry: the API edit survives the restart.
    again = gateway_factory([file_channel], database_url=database_url)
    assert again.admin("GET", "/admin/channels/file").json()["weight"] == 7
    again.stop()
    # The file entry changed: the file wins.
    changed = gateway_factory([{**file_channel, "weight": 3}], database_url=database_url)
    assert changed.admin("GET", "/admin/channels/file").json()["weight"] == 3


def test_balance_survives_restart(gateway_factory: GatewayFactory, sim: OpenAISim, database_url: str) -> None:
    server = gateway_factory([sim_channel(sim)], database_url=database_url)
    account_id, key = server.account_key("1")
    for _ in range(3):
        assert server.post_chat(key, BODY).status_code == 200
    spent = Decimal(server.admin("GET", f"/admin/accounts/{account_id}").json()["balance"])
    assert spent < 1
    server.stop()
    again = gateway_factory([sim_channel(sim)], database_url=database_url)
    assert Decimal(again.admin("GET", f"/admin/accounts/{account_id}").json()["balance"]) == spent
    assert again.post_chat(key, BODY).status_code == 200
