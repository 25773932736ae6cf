"""The relational schema (SQLAlchemy Core). Amounts are BIGINT nano-USD; times are unix seconds."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("balance", BigInteger, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("api_name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_hint", String(32), nullable=False),
    Column("allow_save_logs", Boolean, nullable=False, default=True),
    Column("allow_manage_key", Boolean, nullable=False, default=False),
    Column("allow_custom_model", Boolean, nullable=False, default=False),
    Column("limit_cost", BigInteger, nullable=False, default=0),
    Column("current_cost", BigInteger, nullable=False, default=0),
    Column("limit_daily_cost", BigInteger, nullable=False, default=0),
    Column("current_date_cost", BigInteger, nullable=False, default=0),
    Column("cost_date", String(10), nullable=False, default=""),
    Column("expired_on", BigInteger, nullable=False, default=0),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("account_id", "api_name", name="uq_api_keys_account_name"),
)

channels = Table(
    "channels",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("config", Text, nullable=False),
    Column("source", String(8), nullable=False),
    Column("file_hash", String(64), nullable=False, default=""),
    Column("updated_at", BigInteger, nullable=False),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, nullable=False),
    Column("key_id", Integer, nullable=True),
    Column("request_id", String(40), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_ledger_account", "account_id", "id"),
)

usage_logs = Table(
    "usage_logs",
    metadata,
    Column("request_id", String(40), primary_key=True),
    Column("account_id", Integer, nullable=False),
    Column("key_id", Integer, nullable=False),
    Column("api_name", String(200), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("channel", String(64), nullable=True),
    Column("status", String(8), nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("stream", Boolean, nullable=False, default=False),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("cached_input_tokens", Integer, nullable=False, default=0),
    Column("cache_write_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("reasoning_tokens", Integer, nullable=False, default=0),
    Column("requests", Integer, nullable=False, default=0),
    Column("estimated", Boolean, nullable=False, default=False),
    Column("cost", BigInteger, nullable=False, default=0),
    Column("latency_ms", Integer, nullable=False, default=0),
    Column("first_byte_ms", Integer, nullable=True),
    Column("attempts", Integer, nullable=False, default=1),
    Column("error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_usage_logs_account_time", "account_id", "created_at"),
)
