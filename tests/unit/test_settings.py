"""omnirelay.settings: channel validation, precedence (flags > env > file > defaults), database URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from omnirelay.settings import (
    BreakerSettings,
    ChannelConfig,
    RoutingSettings,
    Settings,
    load_settings,
)

_ENV_VARS = (
    "OMNIRELAY_HOST",
    "OMNIRELAY_PORT",
    "OMNIRELAY_DATA_DIR",
    "OMNIRELAY_DATABASE_URL",
    "OMNIRELAY_PUBLIC_BASE_URL",
    "OMNIRELAY_LOG_LEVEL",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    yield


def _channel(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "main", "base_url": "https://api.example.com/v1"}
    data.update(overrides)
    return data


# ---- ChannelConfig ------------------------------------------------------------------------------


def test_channel_defaults() -> None:
    channel = ChannelConfig.model_validate(_channel())
    assert channel.provider == "openai"
    assert channel.api_key is None
    assert channel.api_keys == []
    assert channel.models == []
    assert channel.priority == 0
    assert channel.weight == 1
    assert channel.timeout_s == 120.0
    assert channel.enabled is True
    assert channel.model_map() == {}


@pytest.mark.parametrize("name", ["a", "main-1", "Open_AI.eu", "x" * 64, "0"])
def test_channel_name_ok(name: str) -> None:
    assert ChannelConfig.model_validate(_channel(name=name)).name == name


@pytest.mark.parametrize("name", ["", "x" * 65, "with space", "slash/name", "ünï", "semi;colon", "a\n"])
def test_channel_name_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="channel name"):
        ChannelConfig.model_validate(_channel(name=name))


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        ("https://api.example.com/v1/", "https://api.example.com/v1"),
        ("http://127.0.0.1:8000//", "http://127.0.0.1:8000"),
    ],
)
def test_channel_base_url_ok(url: str, stored: str) -> None:
    assert ChannelConfig.model_validate(_channel(base_url=url)).base_url == stored


@pytest.mark.parametrize("url", ["api.example.com", "ftp://example.com", "HTTPS//x", "", "ws://x"])
def test_channel_base_url_scheme_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="base_url must start with http:// or https://"):
        ChannelConfig.model_validate(_channel(base_url=url))


def test_api_key_merged_first_into_api_keys() -> None:
    channel = ChannelConfig.model_validate(_channel(api_key="k-main", api_keys=["k-2", "k-3"]))
    assert channel.api_keys == ["k-main", "k-2", "k-3"]
    assert channel.api_key is None


def test_api_key_alone() -> None:
    channel = ChannelConfig.model_validate(_channel(api_key="k-main"))
    assert channel.api_keys == ["k-main"]
    assert channel.api_key is None


def test_api_key_already_listed_not_duplicated() -> None:
    channel = ChannelConfig.model_validate(_channel(api_key="k-2", api_keys=["k-1", "k-2"]))
    assert channel.api_keys == ["k-1", "k-2"]


def test_empty_api_key_ignored() -> None:
    assert ChannelConfig.model_validate(_channel(api_key="", api_keys=["k"])).api_keys == ["k"]


def test_models_list_maps_to_itself() -> None:
    channel = ChannelConfig.model_validate(_channel(models=["gpt-4o", "gpt-4o-mini"]))
    assert channel.model_map() == {"gpt-4o": "gpt-4o", "gpt-4o-mini": "gpt-4o-mini"}


def test_models_map() -> None:
    channel = ChannelConfig.model_validate(_channel(models={"fast": "gpt-4o-mini", "gpt-4o": "azure-4o"}))
    assert channel.model_map() == {"fast": "gpt-4o-mini", "gpt-4o": "azure-4o"}
    # a copy: changing it leaves the config alone
    channel.model_map()["x"] = "y"
    assert channel.model_map() == {"fast": "gpt-4o-mini", "gpt-4o": "azure-4o"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"provider": "no-such-provider"},
        {"weight": -1},
        {"timeout_s": 0},
        {"timeout_s": -5},
        {"models": "gpt-4o"},
        {"priority": "high"},
    ],
)
def test_channel_bad_fields(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ChannelConfig.model_validate(_channel(**overrides))


def test_channel_unknown_field_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        ChannelConfig.model_validate(_channel(apikey="typo"))


def test_channel_public_hides_keys() -> None:
    channel = ChannelConfig.model_validate(_channel(api_key="k-1", api_keys=["k-2"], models=["m"]))
    public = channel.public()
    assert "api_key" not in public
    assert "api_keys" not in public
    assert public["api_keys_count"] == 2
    assert public["name"] == "main"
    assert public["models"] == ["m"]
    assert "k-1" not in repr(public)
    assert "k-2" not in repr(public)


# ---- Settings -----------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8302
    assert settings.data_dir == Path("./data")
    assert settings.database_url is None
    assert settings.max_body_bytes == 20 * 1024 * 1024
    assert settings.routing.max_attempts == 3
    assert settings.routing.breaker == BreakerSettings()
    assert settings.billing.default_output_hold_tokens == 4096
    assert settings.channels == []
    assert settings.models == []


def test_duplicate_channel_names_refused() -> None:
    with pytest.raises(ValidationError, match=r"duplicate channel names: \['a'\]"):
        Settings.model_validate({"channels": [_channel(name="a"), _channel(name="b"), _channel(name="a")]})


def test_distinct_channel_names_ok() -> None:
    settings = Settings.model_validate({"channels": [_channel(name="a"), _channel(name="b")]})
    assert [c.name for c in settings.channels] == ["a", "b"]


@pytest.mark.parametrize(
    "data",
    [
        {"prot": 80},
        {"routing": {"max_attempt": 2}},
        {"routing": {"breaker": {"cooldown": 5}}},
        {"billing": {"hold": 1}},
        {"usage_log": {"flush": 1}},
    ],
)
def test_unknown_fields_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Settings.model_validate(data)


@pytest.mark.parametrize(
    "data",
    [
        {"routing": {"max_attempts": 0}},
        {"routing": {"max_attempts": 11}},
        {"routing": {"breaker": {"error_rate": 0}}},
        {"routing": {"breaker": {"error_rate": 1.5}}},
        {"routing": {"breaker": {"window": 0}}},
        {"max_body_bytes": 1023},
        {"port": "eighty"},
    ],
)
def test_out_of_range_values_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate(data)


def test_routing_defaults() -> None:
    routing = RoutingSettings()
    assert (routing.max_attempts, routing.total_timeout_s, routing.connect_timeout_s) == (3, 300.0, 10.0)
    breaker = routing.breaker
    assert (breaker.window, breaker.min_requests, breaker.error_rate) == (20, 5, 0.5)
    assert (breaker.cooldown_s, breaker.max_cooldown_s) == (30.0, 300.0)


def test_resolved_database_url_default_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "state")
    expected = f"sqlite+aiosqlite:///{tmp_path.resolve()}/state/omnirelay.db"
    assert settings.resolved_database_url == expected


def test_resolved_database_url_relative_data_dir_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=Path("rel"))
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/rel/omnirelay.db"


def test_resolved_database_url_explicit() -> None:
    url = "postgresql+asyncpg://u:p@db:5432/omni"
    assert Settings(database_url=url).resolved_database_url == url


# ---- load_settings ------------------------------------------------------------------------------

_YAML = """\
host: 0.0.0.0
port: 9000
data_dir: {data_dir}
log_level: debug
routing:
  max_attempts: 5
  breaker:
    cooldown_s: 12
channels:
  - name: openai-main
    base_url: https://api.openai.com/v1/
    api_key: sk-file-key-0001
    models: [gpt-4o, gpt-4o-mini]
    priority: 1
  - name: mapped
    base_url: http://localhost:8000
    api_keys: [k1, k2]
    models:
      fast: qwen-turbo
    weight: 3
    enabled: false
models:
  - id: gpt-4o-mini
    price: {{input: "0.20", output: "0.80"}}
"""


def _write_config(tmp_path: Path) -> Path:
    path = tmp_path / "omnirelay.yaml"
    path.write_text(_YAML.format(data_dir=tmp_path / "d"), encoding="utf-8")
    return path


def test_load_from_yaml_file(tmp_path: Path) -> None:
    settings = load_settings(_write_config(tmp_path))
    assert settings.host == "0.0.0.0"
    assert settings.port == 9000
    assert settings.data_dir == tmp_path / "d"
    assert settings.log_level == "debug"
    assert settings.routing.max_attempts == 5
    assert settings.routing.breaker.cooldown_s == 12.0
    assert settings.routing.breaker.min_requests == 5  # default kept
    first, second = settings.channels
    assert first.name == "openai-main"
    assert first.base_url == "https://api.openai.com/v1"
    assert first.api_keys == ["sk-file-key-0001"]
    assert first.model_map() == {"gpt-4o": "gpt-4o", "gpt-4o-mini": "gpt-4o-mini"}
    assert first.priority == 1
    assert second.model_map() == {"fast": "qwen-turbo"}
    assert second.api_keys == ["k1", "k2"]
    assert (second.weight, second.enabled) == (3, False)
    assert settings.models == [{"id": "gpt-4o-mini", "price": {"input": "0.20", "output": "0.80"}}]
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{(tmp_path / 'd').resolve()}/omnirelay.db"


def test_load_without_file_gives_defaults() -> None:
    assert load_settings() == Settings()


def test_load_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_settings(path) == Settings()


def test_load_non_mapping_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ValueError, match="must be a YAML mapping"):
        load_settings(path)


def test_load_file_with_unknown_field_refused(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("prot: 80\n", encoding="utf-8")
    with pytest.raises(ValidationError):
        load_settings(path)


def test_load_duplicate_channels_refused(tmp_path: Path) -> None:
    path = tmp_path / "dupe.yaml"
    path.write_text(
        "channels:\n  - {name: a, base_url: 'http://x'}\n  - {name: a, base_url: 'http://y'}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValidationError, match="duplicate channel names"):
        load_settings(path)


def test_env_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OMNIRELAY_HOST", "10.0.0.1")
    monkeypatch.setenv("OMNIRELAY_PORT", "9999")
    monkeypatch.setenv("OMNIRELAY_DATA_DIR", str(tmp_path / "envdata"))
    monkeypatch.setenv("OMNIRELAY_DATABASE_URL", "postgresql+asyncpg://db/omni")
    monkeypatch.setenv("OMNIRELAY_PUBLIC_BASE_URL", "https://gw.example.com")
    monkeypatch.setenv("OMNIRELAY_LOG_LEVEL", "warning")
    settings = load_settings()
    assert settings.host == "10.0.0.1"
    assert settings.port == 9999
    assert settings.data_dir == tmp_path / "envdata"
    assert settings.database_url == "postgresql+asyncpg://db/omni"
    assert settings.resolved_database_url == "postgresql+asyncpg://db/omni"
    assert settings.public_base_url == "https://gw.example.com"
    assert settings.log_level == "warning"


def test_env_beats_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OMNIRELAY_PORT", "7000")
    settings = load_settings(_write_config(tmp_path))
    assert settings.port == 7000
    assert settings.host == "0.0.0.0"  # not in the environment: the file's value


def test_flags_beat_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OMNIRELAY_PORT", "7000")
    monkeypatch.setenv("OMNIRELAY_HOST", "10.0.0.1")
    settings = load_settings(_write_config(tmp_path), port=7100, host=None)
    assert settings.port == 7100
    assert settings.host == "10.0.0.1"  # a None flag is "not given"


def test_bad_env_value_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIRELAY_PORT", "not-a-port")
    with pytest.raises(ValidationError):
        load_settings()


def test_other_env_vars_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIRELAY_MAX_BODY_BYTES", "2048")
    assert load_settings().max_body_bytes == 20 * 1024 * 1024


@pytest.mark.parametrize(
    "url", ["sqlite+aiosqlite:///tmp/x.db", "postgresql+asyncpg://postgres@127.0.0.1:5432/omni"]
)
def test_supported_database_urls(url: str) -> None:
    assert Settings(database_url=url).resolved_database_url == url


@pytest.mark.parametrize(
    "url", ["sqlite:///tmp/x.db", "postgresql://u@h/db", "mysql+aiomysql://u@h/db", "omnirelay.db"]
)
def test_unsupported_database_urls_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="unsupported database URL"):
        Settings(database_url=url)


def test_unsupported_database_url_from_env_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIRELAY_DATABASE_URL", "sqlite:///plain.db")
    with pytest.raises(ValidationError, match="unsupported database URL"):
        load_settings()


def test_breaker_settings_must_be_consistent() -> None:
    with pytest.raises(ValidationError, match="min_requests"):
        BreakerSettings(window=3, min_requests=5)
    with pytest.raises(ValidationError, match="max_cooldown_s"):
        BreakerSettings(cooldown_s=60, max_cooldown_s=30)
    assert BreakerSettings(window=5, min_requests=5).min_requests == 5
