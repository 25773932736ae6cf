"""GET /v1/models with 302 fields and the llm filter; the model status monitor."""

from __future__ import annotations

from tests.conftest import GatewayFactory, sim_channel
from tests.upstreams.openai import OpenAISim


def test_models_lists_what_the_key_can_reach(gateway_factory: GatewayFactory, sim: OpenAISim) -> None:
    server = gateway_factory(
        [sim_channel(sim, models=["gpt-4o-mini", "sim-model", "text-embedding-3-small"])],
        models=[{"id": "priced-but-unrouted", "price": {"input": "1", "output": "1"}}],
    )
    _, key = server.account_key()
    data = server.get("/v1/models", key).json()["data"]
    ids = [m["id"] for m in data]
    # sim-model has no price (hidden); priced-but-unrouted has no channel (hidden).
    assert ids == ["gpt-4o-mini", "text-embedding-3-small"]
    mini = data[0]
    assert mini["object"] == "model"
    assert mini["content_length"] == 128000 and mini["supported_tools"] is True
    assert mini["price"] == {"input_token": "0.15", "output_token": "0.6", "cached_input_token": "0.075"}
    assert [m["id"] for m in server.get("/v1/models", key, llm=1).json()["data"]] == ["gpt-4o-mini"]
    assert [m["id"] for m in server.get("/v1/models", key, llm=0).json()["data"]] == [
        "text-embedding-3-small"
    ]
    assert server.get("/v1/models", key, llm=2).status_code == 400
    assert server.get("/v1/models", "sk-bad").status_code == 401


def test_status_reports_first_byte_latency_from_traffic(
    gateway_factory: GatewayFactory, sim: OpenAISim
) -> None:
    server = gateway_factory([sim_channel(sim)])
    _, key = server.account_key()
    before = server.get("/v1/status", key, model="gpt-4o-mini").json()["data"]
    assert before == [
        {"id": "gpt-4o-mini", "object": "model", "first_byte_req_time": None, "available": True}
    ]
    sim.config.latency_ms = 200
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    for _ in range(3):
        assert server.post_chat(key, body).status_code == 200
    after = server.get("/status", key, model="gpt-4o-mini").json()["data"][0]
    assert 0.2 <= float(after["first_byte_req_time"]) < 1.0
