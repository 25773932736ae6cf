"""omnirelay.core.router: channel sets, candidate order, model maps, key rotation."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import pytest

from omnirelay.core.breaker import State
from omnirelay.core.router import Router
from omnirelay.settings import BreakerSettings, ChannelConfig


def _ch(name: str, models: list[str] | dict[str, str] | None = None, **kw: Any) -> ChannelConfig:
    data: dict[str, Any] = {
        "name": name,
        "base_url": f"https://{name}.example.com/v1",
        "api_keys": [f"sk-{name}-secret-0001"],
        "models": ["m"] if models is None else models,
    }
    data.update(kw)
    return ChannelConfig.model_validate(data)


def _router(*configs: ChannelConfig, seed: int = 1234, min_requests: int = 1) -> Router:
    router = Router(
        BreakerSettings(min_requests=min_requests, error_rate=1.0),
        lambda cfg: object(),
        rng=random.Random(seed),
    )
    router.set_channels(configs)
    return router


def _names(router: Router, model: str = "m") -> list[str]:
    return [c.name for c in router.candidates(model)]


def _trip(router: Router, name: str) -> None:
    channel = router.channel(name)
    assert channel is not None
    channel.breaker.record(False)  # min_requests=1, error_rate=1.0: one failure opens it
    assert channel.breaker.state is State.OPEN


# ---- candidates ---------------------------------------------------------------------------------


def test_unknown_model_has_no_candidates() -> None:
    router = _router(_ch("a"))
    assert router.candidates("other") == []
    assert router.has_model("m")
    assert not router.has_model("other")


def test_priority_tiers_in_order() -> None:
    router = _router(
        _ch("late", priority=5),
        _ch("first", priority=-1),
        _ch("mid", priority=0),
        _ch("later", priority=7),
    )
    for _ in range(50):
        assert _names(router) == ["first", "mid", "late", "later"]


def test_tier_members_stay_inside_their_tier() -> None:
    router = _router(
        _ch("b1", priority=1),
        _ch("a1", priority=0),
        _ch("b2", priority=1),
        _ch("a2", priority=0),
        _ch("c", priority=2),
    )
    seen_first: set[str] = set()
    for _ in range(200):
        names = _names(router)
        assert set(names[:2]) == {"a1", "a2"}
        assert set(names[2:4]) == {"b1", "b2"}
        assert names[4] == "c"
        seen_first.add(names[0])
    assert seen_first == {"a1", "a2"}  # the order inside a tier really varies


def test_weighted_first_pick_proportions() -> None:
    router = _router(_ch("w1", weight=1), _ch("w2", weight=2), _ch("w3", weight=3))
    draws = 10_000
    first = Counter(_names(router)[0] for _ in range(draws))
    assert abs(first["w1"] / draws - 1 / 6) < 0.02
    assert abs(first["w2"] / draws - 2 / 6) < 0.02
    assert abs(first["w3"] / draws - 3 / 6) < 0.02


def test_weighted_order_is_a_draw_without_replacement() -> None:
    router = _router(_ch("a", weight=1), _ch("b", weight=2), _ch("c", weight=3), seed=99)
    draws = 10_000
    orders = Counter(tuple(_names(router)) for _ in range(draws))
    # P(x, y, z) = w_x / (w_a + w_b + w_c) * w_y / (w_y + w_z)
    expected = {
        ("c", "b", "a"): 3 / 6 * 2 / 3,
        ("c", "a", "b"): 3 / 6 * 1 / 3,
        ("b", "c", "a"): 2 / 6 * 3 / 4,
        ("b", "a", "c"): 2 / 6 * 1 / 4,
        ("a", "c", "b"): 1 / 6 * 3 / 5,
        ("a", "b", "c"): 1 / 6 * 2 / 5,
    }
    assert set(orders) == set(expected)
    for order, probability in expected.items():
        assert abs(orders[order] / draws - probability) < 0.015, order


def test_equal_weights_split_evenly() -> None:
    router = _router(_ch("x", weight=5), _ch("y", weight=5), seed=7)
    draws = 10_000
    first = Counter(_names(router)[0] for _ in range(draws))
    assert abs(first["x"] / draws - 0.5) < 0.02


def test_weight_zero_goes_last_in_its_tier() -> None:
    router = _router(
        _ch("zero", weight=0),
        _ch("one", weight=1),
        _ch("five", weight=5),
        _ch("next-tier", priority=1, weight=1),
    )
    for _ in range(2000):
        names = _names(router)
        assert names[2:] == ["zero", "next-tier"]
        assert set(names[:2]) == {"one", "five"}


def test_several_weight_zero_channels_share_the_end_in_random_order() -> None:
    router = _router(_ch("z1", weight=0), _ch("live", weight=1), _ch("z2", weight=0))
    ends: set[tuple[str, ...]] = set()
    for _ in range(500):
        names = _names(router)
        assert names[0] == "live"
        ends.add(tuple(names[1:]))
    assert ends == {("z1", "z2"), ("z2", "z1")}


def test_seeded_rng_is_reproducible() -> None:
    configs = [_ch(f"c{i}", weight=i + 1) for i in range(5)]
    one = _router(*configs, seed=42)
    two = _router(*configs, seed=42)
    assert [_names(one) for _ in range(100)] == [_names(two) for _ in range(100)]


def test_no_duplicates_and_nothing_lost() -> None:
    configs = [_ch(f"c{i}", priority=i % 3, weight=i % 4) for i in range(12)]
    router = _router(*configs)
    for _ in range(300):
        names = _names(router)
        assert len(names) == len(set(names)) == 12


def test_single_channel() -> None:
    router = _router(_ch("only", weight=0))
    assert _names(router) == ["only"]


def test_disabled_channels_excluded() -> None:
    router = _router(
        _ch("on", models=["m", "shared"]),
        _ch("off", models=["m", "only-off"], enabled=False),
    )
    assert _names(router) == ["on"]
    assert _names(router, "shared") == ["on"]
    assert router.candidates("only-off") == []
    assert not router.has_model("only-off")
    assert router.models() == ["m", "shared"]
    # the disabled channel still exists, it only receives no traffic
    assert router.channel("off") is not None
    assert sorted(c.name for c in router.channels()) == ["off", "on"]


def test_open_breaker_channels_excluded() -> None:
    router = _router(_ch("a", priority=0), _ch("b", priority=1), _ch("c", priority=2))
    _trip(router, "b")
    for _ in range(20):
        assert _names(router) == ["a", "c"]
    _trip(router, "a")
    _trip(router, "c")
    assert router.candidates("m") == []
    assert router.has_model("m")  # the model still exists; its channels are cooling down


def test_half_open_channel_with_probe_in_flight_excluded() -> None:
    router = _router(_ch("a"), _ch("b", priority=1))
    channel = router.channel("a")
    assert channel is not None
    channel.breaker.record(False, now=time.monotonic() - 1000.0)  # opened long ago
    assert _names(router) == ["a", "b"]  # cooldown passed: available for a probe
    assert channel.breaker.acquire()
    assert _names(router) == ["b"]


def test_models_sorted_and_unique() -> None:
    router = _router(_ch("a", models=["zeta", "alpha"]), _ch("b", models=["alpha", "mid"]))
    assert router.models() == ["alpha", "mid", "zeta"]
    assert sorted(_names(router, "alpha")) == ["a", "b"]
    assert _names(router, "zeta") == ["a"]


# ---- model map ----------------------------------------------------------------------------------


def test_model_list_maps_to_itself() -> None:
    router = _router(_ch("a", models=["gpt-4o", "gpt-4o-mini"]))
    channel = router.channel("a")
    assert channel is not None
    assert channel.model_map == {"gpt-4o": "gpt-4o", "gpt-4o-mini": "gpt-4o-mini"}


def test_model_map_public_to_upstream() -> None:
    router = _router(
        _ch("a", models={"gpt-4o": "openai/gpt-4o-2024-08-06", "fast": "gpt-4o-mini"}),
        _ch("b", models=["gpt-4o"]),
    )
    a = router.channel("a")
    assert a is not None
    assert a.model_map == {"gpt-4o": "openai/gpt-4o-2024-08-06", "fast": "gpt-4o-mini"}
    # routing is by public name; the upstream name is never a public model
    assert router.models() == ["fast", "gpt-4o"]
    assert not router.has_model("gpt-4o-mini")
    assert not router.has_model("openai/gpt-4o-2024-08-06")
    assert _names(router, "fast") == ["a"]


# ---- keys ---------------------------------------------------------------------------------------


def test_key_rotation_round_robin() -> None:
    router = _router(_ch("a", api_keys=["k-one", "k-two", "k-three"]))
    channel = router.channel("a")
    assert channel is not None
    assert [channel.next_key() for _ in range(7)] == [
        "k-one",
        "k-two",
        "k-three",
        "k-one",
        "k-two",
        "k-three",
        "k-one",
    ]


def test_api_key_comes_first_in_rotation() -> None:
    router = _router(_ch("a", api_key="k-main", api_keys=["k-extra"]))
    channel = router.channel("a")
    assert channel is not None
    assert [channel.next_key() for _ in range(3)] == ["k-main", "k-extra", "k-main"]


def test_channel_without_keys_gives_empty_key() -> None:
    router = _router(_ch("a", api_keys=[]))
    channel = router.channel("a")
    assert channel is not None
    assert channel.next_key() == ""
    assert channel.next_key() == ""


# ---- set_channels -------------------------------------------------------------------------------


def test_breaker_state_kept_across_set_channels_for_same_name() -> None:
    router = _router(_ch("a"), _ch("b", priority=1))
    old = router.channel("a")
    assert old is not None
    _trip(router, "a")
    router.set_channels([_ch("a", base_url="https://moved.example.com"), _ch("b", priority=1)])
    new = router.channel("a")
    assert new is not None
    assert new is not old
    assert new.config.base_url == "https://moved.example.com"
    assert new.breaker is old.breaker
    assert new.breaker.state is State.OPEN
    assert _names(router) == ["b"]


def test_renamed_or_readded_channel_gets_a_fresh_breaker() -> None:
    router = _router(_ch("a"))
    _trip(router, "a")
    router.set_channels([_ch("a2")])
    renamed = router.channel("a2")
    assert renamed is not None
    assert renamed.breaker.state is State.CLOSED
    assert router.channel("a") is None
    router.set_channels([_ch("a")])  # "a" was gone for one generation: its breaker went with it
    readded = router.channel("a")
    assert readded is not None
    assert readded.breaker.state is State.CLOSED
    assert _names(router) == ["a"]


def test_set_channels_builds_adapters_with_the_factory() -> None:
    built: list[str] = []

    def factory(cfg: ChannelConfig) -> object:
        built.append(cfg.name)
        return ("adapter", cfg.name)

    router = Router(BreakerSettings(), factory, rng=random.Random(0))
    router.set_channels([_ch("a"), _ch("b", enabled=False)])
    assert built == ["a", "b"]
    channel = router.channel("a")
    assert channel is not None
    assert channel.adapter == ("adapter", "a")
    router.set_channels([_ch("a")])
    assert built == ["a", "b", "a"]
    assert router.channel("b") is None


def test_set_channels_replaces_model_index() -> None:
    router = _router(_ch("a", models=["old"]))
    router.set_channels([_ch("a", models=["new"])])
    assert router.models() == ["new"]
    assert router.candidates("old") == []


# ---- redactor -----------------------------------------------------------------------------------


def test_redactor_knows_channel_keys() -> None:
    router = _router(
        _ch("a", api_keys=["plainsecretvalue", "another-plain-one"]),
        _ch("off", api_keys=["disabledsecret"], enabled=False),
    )
    text = "keys plainsecretvalue, another-plain-one and disabledsecret leaked"
    assert router.redactor.text(text) == "keys [redacted], [redacted] and [redacted] leaked"


def test_redactor_follows_the_channel_set() -> None:
    router = _router(_ch("a", api_keys=["plainsecretvalue"]))
    router.set_channels([_ch("b", api_keys=["othersecretvalue"])])
    assert router.redactor.text("plainsecretvalue othersecretvalue") == "plainsecretvalue [redacted]"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_candidates_are_channel_objects_of_the_router(seed: int) -> None:
    router = _router(_ch("a"), _ch("b"), seed=seed)
    for channel in router.candidates("m"):
        assert router.channel(channel.name) is channel
