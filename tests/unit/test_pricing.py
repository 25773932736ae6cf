"""omnirelay.core.pricing: exact costs, price parsing, the catalog and config overrides."""

from __future__ import annotations

from typing import Any

import pytest

from omnirelay.core.pricing import (
    ModelInfo,
    Price,
    PriceBook,
    load_shipped_catalog,
    model_from_entry,
    parse_price,
)
from omnirelay.core.usage import Usage

USD = 1_000_000_000  # nanos


# ---- Price.cost ---------------------------------------------------------------------------------


def test_cost_input_and_output() -> None:
    price = Price(input=1 * USD, output=2 * USD)  # 1 and 2 USD per 1M tokens
    # 1000 tokens at 1 USD/1M = 0.001 USD; 500 tokens at 2 USD/1M = 0.001 USD
    assert price.cost(Usage(input_uncached=1000, output=500)) == 2_000_000


def test_cost_of_nothing_is_zero() -> None:
    assert Price(input=5 * USD, output=7 * USD).cost(Usage(requests=0)) == 0


def test_cached_input_defaults_to_input_price() -> None:
    price = Price(input=1 * USD, output=0)
    assert price.cost(Usage(input_cache_read=1000, requests=0)) == 1_000_000


def test_cached_input_price_used_when_given() -> None:
    price = Price(input=1 * USD, cached_input=100_000_000)  # 0.10 USD/1M
    assert price.cost(Usage(input_cache_read=1000)) == 100_000


def test_zero_cached_input_price_is_free_not_defaulted() -> None:
    price = Price(input=1 * USD, cached_input=0)
    assert price.cost(Usage(input_uncached=10, input_cache_read=1000)) == 10_000


def test_cache_write_defaults_to_input_price() -> None:
    price = Price(input=3 * USD)
    assert price.cost(Usage(input_cache_write=2000)) == 6_000_000


def test_cache_write_price_used_when_given() -> None:
    price = Price(input=3 * USD, cache_write=3_750_000_000)  # 3.75 USD/1M
    assert price.cost(Usage(input_cache_write=2000)) == 7_500_000


def test_per_request_times_requests() -> None:
    price = Price(per_request=10_000_000)  # 0.01 USD per call
    assert price.cost(Usage()) == 10_000_000
    assert price.cost(Usage(requests=3)) == 30_000_000
    assert price.cost(Usage(requests=0)) == 0
    assert price.cost(Usage(requests=-2)) == 0


def test_each_part_rounds_up_separately() -> None:
    price = Price(input=1, output=1, cached_input=1, cache_write=1)  # 1 nano per 1M tokens
    usage = Usage(input_uncached=1, input_cache_read=1, input_cache_write=1, output=1)
    assert price.cost(usage) == 4


def test_full_cost_is_the_exact_sum_of_parts() -> None:
    price = Price(
        input=2_500_000_000,  # 2.50
        output=10_000_000_000,  # 10.00
        cached_input=1_250_000_000,  # 1.25
        cache_write=3_125_000_000,  # 3.125
        per_request=5,
    )
    usage = Usage(
        input_uncached=1234,
        input_cache_read=4321,
        input_cache_write=100,
        output=777,
        reasoning=500,
        requests=2,
    )
    # 1234*2500 + 4321*1250 + 100*3125 + 777*10000 + 2*5
    assert price.cost(usage) == 3_085_000 + 5_401_250 + 312_500 + 7_770_000 + 10
    assert price.cost(usage) == 16_568_760


def test_reasoning_is_not_charged_on_top_of_output() -> None:
    price = Price(input=1 * USD, output=4 * USD)
    with_reasoning = Usage(input_uncached=10, output=100, reasoning=90)
    without = Usage(input_uncached=10, output=100, reasoning=0)
    assert price.cost(with_reasoning) == price.cost(without) == 10_000 + 400_000


# ---- parse_price --------------------------------------------------------------------------------


def test_parse_price_strings() -> None:
    assert parse_price({"input": "0.15", "output": "0.60", "cached_input": "0.075"}) == Price(
        input=150_000_000, output=600_000_000, cached_input=75_000_000, cache_write=None, per_request=0
    )


def test_parse_price_all_fields() -> None:
    raw = {"input": "3", "output": "15", "cached_input": "0.3", "cache_write": "3.75", "per_request": "0.01"}
    assert parse_price(raw) == Price(
        input=3 * USD,
        output=15 * USD,
        cached_input=300_000_000,
        cache_write=3_750_000_000,
        per_request=10_000_000,
    )


def test_parse_price_empty_and_none_fields() -> None:
    assert parse_price({}) == Price(0, 0, None, None, 0)
    assert parse_price({"input": None, "output": "1", "cached_input": None}) == Price(
        input=0, output=USD, cached_input=None
    )


def test_parse_price_explicit_zero_cached_is_kept() -> None:
    assert parse_price({"input": "1", "cached_input": "0"}).cached_input == 0


def test_parse_price_unknown_field() -> None:
    with pytest.raises(ValueError, match=r"unknown price fields: \['inptu'\]"):
        parse_price({"inptu": "1"})


@pytest.mark.parametrize("field", ["input", "output", "cached_input", "cache_write", "per_request"])
def test_parse_price_negative(field: str) -> None:
    with pytest.raises(ValueError, match=f"price {field} is negative"):
        parse_price({field: "-0.01"})


@pytest.mark.parametrize("bad", ["abc", "1.0000000001", True, "NaN", "inf"])
def test_parse_price_bad_amount(bad: Any) -> None:
    with pytest.raises(ValueError):
        parse_price({"input": bad})


# ---- model entries ------------------------------------------------------------------------------


def test_model_from_entry() -> None:
    info = model_from_entry(
        {
            "id": "m",
            "vendor": "acme",
            "category": "chat",
            "content_length": 1000,
            "supported_tools": True,
            "price": {"input": "1", "output": "2"},
            "homepage": "https://example.com",
        }
    )
    assert info.id == "m"
    assert info.vendor == "acme"
    assert info.price == Price(input=USD, output=2 * USD)
    assert info.content_length == 1000
    assert info.supported_tools is True
    assert info.free is False
    assert info.extra == {"homepage": "https://example.com"}
    assert info.billable is True
    assert info.is_llm is True


@pytest.mark.parametrize("entry", [{}, {"id": ""}, {"id": 5}, {"id": None}])
def test_model_entry_needs_an_id(entry: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="without an id"):
        model_from_entry(entry)


def test_model_without_price_and_not_free_is_not_billable() -> None:
    assert model_from_entry({"id": "x"}).billable is False
    assert model_from_entry({"id": "x", "price": "1.00"}).billable is False
    assert ModelInfo(id="x", price=None).billable is False


def test_free_model_is_billable_without_price() -> None:
    info = model_from_entry({"id": "x", "free": True})
    assert info.price is None
    assert info.billable is True


def test_embedding_is_not_llm() -> None:
    assert model_from_entry({"id": "e", "category": "embedding"}).is_llm is False


# ---- PriceBook ----------------------------------------------------------------------------------

_CATALOG: list[dict[str, Any]] = [
    {
        "id": "m1",
        "vendor": "v",
        "description": "catalog text",
        "price": {"input": "1", "output": "2", "cached_input": "0.5"},
    },
    {"id": "free1", "free": True, "vendor": "z"},
    {"id": "plain", "price": {"input": "0.1", "output": "0.2"}},
]


def test_pricebook_catalog_only() -> None:
    book = PriceBook(_CATALOG, [])
    m1 = book.get("m1")
    assert m1 is not None
    assert m1.price == Price(input=USD, output=2 * USD, cached_input=500_000_000)
    assert [m.id for m in book.all()] == ["m1", "free1", "plain"]
    assert book.get("nope") is None


def test_override_price_block_replaces_catalog_block() -> None:
    book = PriceBook(_CATALOG, [{"id": "m1", "price": {"input": "3", "output": "4"}}])
    m1 = book.get("m1")
    assert m1 is not None
    # cached_input from the catalog is not carried over
    assert m1.price == Price(input=3 * USD, output=4 * USD, cached_input=None)
    # other catalog fields stay
    assert m1.vendor == "v"
    assert m1.description == "catalog text"


def test_override_without_price_keeps_catalog_price() -> None:
    book = PriceBook(_CATALOG, [{"id": "m1", "description": "mine"}])
    m1 = book.get("m1")
    assert m1 is not None
    assert m1.description == "mine"
    assert m1.price == Price(input=USD, output=2 * USD, cached_input=500_000_000)


def test_override_adds_a_new_model() -> None:
    book = PriceBook(_CATALOG, [{"id": "per-call", "price": {"per_request": "0.01"}}])
    info = book.get("per-call")
    assert info is not None
    assert info.price == Price(per_request=10_000_000)
    assert info.billable is True
    assert [m.id for m in book.all()] == ["m1", "free1", "plain", "per-call"]


def test_override_price_clears_catalog_free() -> None:
    book = PriceBook(_CATALOG, [{"id": "free1", "price": {"input": "1"}}])
    info = book.get("free1")
    assert info is not None
    assert info.free is False
    assert info.price == Price(input=USD)
    assert info.vendor == "z"


def test_override_price_keeps_free_set_by_the_override() -> None:
    book = PriceBook(_CATALOG, [{"id": "free1", "price": {"input": "1"}, "free": True}])
    info = book.get("free1")
    assert info is not None
    assert info.free is True


def test_override_null_price_does_not_clear_free() -> None:
    book = PriceBook(_CATALOG, [{"id": "free1", "price": None}])
    info = book.get("free1")
    assert info is not None
    assert info.free is True
    assert info.price is None
    assert info.billable is True


def test_override_can_mark_free() -> None:
    book = PriceBook(_CATALOG, [{"id": "local", "free": True}])
    info = book.get("local")
    assert info is not None
    assert info.billable is True


def test_override_new_model_without_price_is_not_billable() -> None:
    book = PriceBook(_CATALOG, [{"id": "mystery", "category": "chat"}])
    info = book.get("mystery")
    assert info is not None
    assert info.billable is False


def test_override_with_bad_price_is_refused() -> None:
    with pytest.raises(ValueError):
        PriceBook(_CATALOG, [{"id": "m1", "price": {"input": "0.0000000001"}}])


def test_catalog_is_not_mutated_by_overrides() -> None:
    catalog = [{"id": "a", "price": {"input": "1"}, "free": True}]
    PriceBook(catalog, [{"id": "a", "price": {"input": "2"}}])
    assert catalog == [{"id": "a", "price": {"input": "1"}, "free": True}]


# ---- the shipped catalog ------------------------------------------------------------------------


def test_shipped_catalog_ids_unique() -> None:
    catalog = load_shipped_catalog()
    ids = [entry["id"] for entry in catalog]
    assert len(ids) > 0
    assert len(ids) == len(set(ids))
    assert all(isinstance(i, str) and i for i in ids)


def test_shipped_catalog_loads_and_every_chat_model_is_billable() -> None:
    book = PriceBook(load_shipped_catalog(), [])
    chat = [m for m in book.all() if m.is_llm]
    assert len(chat) > 0
    not_billable = [m.id for m in chat if not m.billable]
    assert not_billable == []
    assert {m.category for m in book.all()} <= {"chat", "embedding"}


def test_shipped_chat_models_carry_the_documented_fields() -> None:
    for entry in load_shipped_catalog():
        if entry.get("category", "chat") != "chat":
            continue
        assert isinstance(entry.get("content_length"), int), entry["id"]
        assert isinstance(entry.get("max_completion_tokens"), int), entry["id"]
        assert isinstance(entry.get("supported_tools"), bool), entry["id"]


def test_shipped_prices_are_quoted_plain_decimals() -> None:
    for entry in load_shipped_catalog():
        for part, value in (entry.get("price") or {}).items():
            assert isinstance(value, str), (entry["id"], part)
            assert "e" not in value.lower(), (entry["id"], part)


def test_shipped_free_models_have_no_price() -> None:
    for entry in load_shipped_catalog():
        if entry.get("free"):
            assert "price" not in entry, entry["id"]


def test_shipped_embedding_models_price_input_only() -> None:
    embeddings = [e for e in load_shipped_catalog() if e.get("category") == "embedding"]
    assert embeddings
    for entry in embeddings:
        assert set(entry["price"]) == {"input"}, entry["id"]


def test_shipped_known_prices() -> None:
    book = PriceBook(load_shipped_catalog(), [])
    mini = book.get("gpt-4o-mini")
    assert mini is not None
    assert mini.price == Price(input=150_000_000, output=600_000_000, cached_input=75_000_000)
    glm = book.get("glm-4-flash")
    assert glm is not None
    assert (glm.free, glm.price, glm.billable) == (True, None, True)


def test_config_override_over_shipped_catalog() -> None:
    book = PriceBook(
        load_shipped_catalog(),
        [{"id": "gpt-4o-mini", "price": {"input": "0.20", "output": "0.80", "cached_input": "0.10"}}],
    )
    mini = book.get("gpt-4o-mini")
    assert mini is not None
    assert mini.price == Price(input=200_000_000, output=800_000_000, cached_input=100_000_000)
    assert mini.vendor == "openai"
