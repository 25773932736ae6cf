"""Run the real gateway (uvicorn + create_app) on a loopback port in a background thread."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import httpx
import uvicorn

from omnirelay.app import create_app
from omnirelay.gateway import Gateway
from omnirelay.settings import Settings, load_settings

ADMIN_KEY = "sk-operator-test-key"
# One pooled client for the whole test run: a new httpx client per call costs ~20 ms of TLS setup.
HTTP = httpx.Client(timeout=30)


class GatewayServer:
    def __init__(self, settings: Settings) -> None:
        os.environ["OMNIRELAY_ADMIN_KEY"] = ADMIN_KEY
        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, loop="asyncio", log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.base_url = ""

    @property
    def gw(self) -> Gateway:
        gw: Gateway = self.app.state.gateway
        return gw

    def start(self) -> GatewayServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    # --- operator helpers -----------------------------------------------------------------------

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}", **kwargs.pop("headers", {})}
        return HTTP.request(method, self.base_url + path, headers=headers, **kwargs)

    def post_chat(self, key: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        auth = headers or {"Authorization": f"Bearer {key}"}
        return HTTP.post(f"{self.base_url}/v1/chat/completions", json=body, headers=auth)

    def get(self, path: str, key: str, **params: Any) -> httpx.Response:
        return HTTP.get(self.base_url + path, headers={"Authorization": f"Bearer {key}"}, params=params)

    def create_account(self, balance: str = "10", name: str = "acme") -> int:
        resp = self.admin("POST", "/admin/accounts", json={"name": name, "balance": balance})
        assert resp.status_code == 201, resp.text
        return int(resp.json()["id"])

    def create_key(self, account_id: int, **settings: Any) -> str:
        body = {"api_name": settings.pop("api_name", f"key-{time.monotonic_ns()}"), **settings}
        resp = self.admin("POST", f"/admin/accounts/{account_id}/api_keys", json=body)
        assert resp.status_code == 201, resp.text
        return str(resp.json()["api_key"])

    def account_key(self, balance: str = "10", **settings: Any) -> tuple[int, str]:
        account_id = self.create_account(balance)
        return account_id, self.create_key(account_id, **settings)


def make_settings(
    data_dir: str, database_url: str | None, channels: list[dict[str, Any]], **extra: Any
) -> Settings:
    return load_settings(None, data_dir=data_dir, database_url=database_url, channels=channels, **extra)
