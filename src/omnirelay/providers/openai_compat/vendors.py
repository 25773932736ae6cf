"""The vendor table: what each OpenAI-compatible vendor needs changed in a request, kept as data.

``catalog/vendors.yaml`` has one row per vendor. A channel gets the row whose host matches the host
of its ``base_url`` (:func:`vendor_for`); :func:`apply_vendor` turns a Chat Completions body into the
body that vendor accepts. A channel with no row (OpenAI itself, a local server) is never rewritten.
Adding a vendor is a new row, not code. See docs/vendors.md.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
import yaml

if TYPE_CHECKING:
    from omnirelay.settings import ChannelConfig

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
_ROW_KEYS = frozenset(
    {
        "id",
        "name",
        "base_url",
        "also_hosts",
        "auth",
        "unsupported_params",
        "model_rules",
        "rename_params",
        "min_temperature",
        "max_temperature",
        "min_top_p",
        "max_top_p",
        "reasoning_field",
        "stream_usage",
        "extra_headers",
        "notes",
        "source",
    }
)
_REQUIRED_KEYS = ("id", "name", "base_url", "auth", "stream_usage", "source")
# Fields the gateway itself relies on: a row may neither remove nor rename them.
_PROTECTED_PARAMS = frozenset({"model", "messages", "stream"})
# Headers the adapter sets itself: a row's extra_headers may not replace them.
_RESERVED_HEADERS = frozenset({"authorization", "content-type", "accept", "content-length", "host"})


@dataclass(frozen=True, slots=True)
class ModelRule:
    """More fields to remove for the models matching one of ``models`` (lower-case globs)."""

    models: tuple[str, ...]
    unsupported_params: tuple[str, ...]
    notes: str

    def matches(self, model: str) -> bool:
        name = model.lower()
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.models)


@dataclass(frozen=True, slots=True)
class Vendor:
    """One row of the vendor table (field meanings: the header of catalog/vendors.yaml)."""

    id: str
    name: str
    base_url: str
    hosts: tuple[str, ...]  # the host of base_url first, then also_hosts; lower-case
    auth: str  # "bearer" or "header:<Name>"
    unsupported_params: tuple[str, ...]
    unsupported_notes: str
    model_rules: tuple[ModelRule, ...]
    rename_params: tuple[tuple[str, str], ...]  # (from, to), applied in order
    min_temperature: float | None
    max_temperature: float | None
    min_top_p: float | None
    max_top_p: float | None
    reasoning_field: str | None
    stream_usage: bool
    extra_headers: tuple[tuple[str, str], ...]
    notes: str
    source: str

    @property
    def auth_header(self) -> str | None:
        """The header that carries the raw key, or None for ``Authorization: Bearer <key>``."""
        return self.auth[len("header:") :] if self.auth.startswith("header:") else None

    def dropped_for(self, model: object) -> tuple[str, ...]:
        """Every field removed from a request for ``model``: the row's own, then its model rules'."""
        if not self.model_rules or not isinstance(model, str):
            return self.unsupported_params
        extra = [p for rule in self.model_rules if rule.matches(model) for p in rule.unsupported_params]
        return self.unsupported_params + tuple(extra) if extra else self.unsupported_params


def _clamp(body: dict[str, Any], name: str, low: float | None, high: float | None) -> None:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return  # absent, null or not a number: left for the vendor to judge
    if low is not None and value < low:
        body[name] = low
    elif high is not None and value > high:
        body[name] = high


def apply_vendor(body: Mapping[str, Any], vendor: Vendor, *, stream: bool) -> dict[str, Any]:
    """The body ``vendor`` accepts; ``body`` itself is never changed (the result is a new dict).

    In order: the row's unsupported fields (and those of its model rules matching ``body["model"]``)
    are removed; fields are renamed (a rename whose target is already set just removes the source);
    temperature and top_p are clamped into the row's bounds; ``stream_options`` is removed unless
    this is a stream to a vendor that honours it.
    """
    out = dict(body)
    for name in vendor.dropped_for(out.get("model")):
        out.pop(name, None)
    for source, target in vendor.rename_params:
        if source in out:
            value = out.pop(source)
            out.setdefault(target, value)
    _clamp(out, "temperature", vendor.min_temperature, vendor.max_temperature)
    _clamp(out, "top_p", vendor.min_top_p, vendor.max_top_p)
    if "stream_options" in out and not (stream and vendor.stream_usage):
        del out["stream_options"]
    return out


def prepare_body(body_bytes: bytes, body: Mapping[str, Any] | None, vendor: Vendor, *, stream: bool) -> bytes:
    """``body_bytes`` rewritten for ``vendor``, or ``body_bytes`` itself when nothing changes.

    ``body`` must be ``body_bytes`` parsed, or None to have it parsed here. Bytes that are not a JSON
    object are returned as they are, for the vendor to refuse.
    """
    if body is None:
        try:
            parsed = orjson.loads(body_bytes)
        except orjson.JSONDecodeError:
            return body_bytes
        if not isinstance(parsed, dict):
            return body_bytes
        body = parsed
    out = apply_vendor(body, vendor, stream=stream)
    # Untouched values are the same objects, so this compares keys and identities: cheap.
    return body_bytes if out == body else orjson.dumps(out)


# ---- loading ---------------------------------------------------------------------------------


def host_of(url: str) -> str:
    """The lower-case host of ``url`` ("" when it has none); ports and paths are ignored."""
    return (urlsplit(url).hostname or "").lower()


def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"vendors.yaml: {where}: {message}")


def _str(row: Mapping[str, Any], key: str, where: str, *, default: str | None = None) -> str:
    value = row.get(key, default)
    if not isinstance(value, str) or (not value and default is None):
        raise _fail(where, f"{key!r} must be a non-empty string")
    return value


def _names(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(where, f"{key!r} must be a list of field names")
    if len(set(value)) != len(value):
        raise _fail(where, f"{key!r} lists a field twice")
    protected = _PROTECTED_PARAMS.intersection(value)
    if protected:
        raise _fail(where, f"{key!r} may not remove {sorted(protected)}")
    return tuple(value)


def _bound(row: Mapping[str, Any], key: str, where: str) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"{key!r} must be a number or null")
    return float(value)


def _pairs(value: Any, where: str, key: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()
    ):
        raise _fail(where, f"{key!r} must be a mapping of strings to strings")
    return tuple(value.items())


def _unsupported(row: Mapping[str, Any], where: str) -> tuple[tuple[str, ...], str]:
    block = row.get("unsupported_params")
    if block is None:
        return (), ""
    if not isinstance(block, dict) or set(block) - {"params", "notes"}:
        raise _fail(where, "'unsupported_params' must be {params: [...], notes: '...'}")
    notes = block.get("notes", "")
    if not isinstance(notes, str):
        raise _fail(where, "'unsupported_params.notes' must be a string")
    return _names(block.get("params"), where, "unsupported_params.params"), notes


def _model_rules(value: Any, where: str) -> tuple[ModelRule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(where, "'model_rules' must be a list")
    rules = []
    for i, raw in enumerate(value):
        at = f"{where}: model_rules[{i}]"
        if not isinstance(raw, dict) or set(raw) - {"models", "unsupported_params", "notes"}:
            raise _fail(at, "a rule is {models: [...], unsupported_params: [...], notes: '...'}")
        models = _names(raw.get("models"), at, "models")
        params = _names(raw.get("unsupported_params"), at, "unsupported_params")
        if not models or not params:
            raise _fail(at, "'models' and 'unsupported_params' must both be non-empty")
        notes = raw.get("notes", "")
        if not isinstance(notes, str):
            raise _fail(at, "'notes' must be a string")
        rules.append(ModelRule(tuple(m.lower() for m in models), params, notes))
    return tuple(rules)


def _vendor(row: Any, index: int) -> Vendor:
    if not isinstance(row, dict):
        raise _fail(f"vendors[{index}]", "each vendor must be a mapping")
    where = f"vendor {row.get('id', index)!r}"
    unknown = set(row) - _ROW_KEYS
    if unknown:
        raise _fail(where, f"unknown fields {sorted(unknown)}")
    missing = [k for k in _REQUIRED_KEYS if k not in row]
    if missing:
        raise _fail(where, f"missing fields {missing}")
    vendor_id = _str(row, "id", where)
    if not _ID.match(vendor_id):
        raise _fail(where, "'id' must be a lower-case slug (letters, digits, '-', '_')")
    base_url = _str(row, "base_url", where)
    if not base_url.startswith("https://") or base_url.endswith("/") or not host_of(base_url):
        raise _fail(where, "'base_url' must be an https URL with a host and no trailing '/'")
    also = _names(row.get("also_hosts"), where, "also_hosts")
    hosts = (host_of(base_url), *(h.lower() for h in also))
    if len(set(hosts)) != len(hosts):
        raise _fail(where, "a host is listed twice")
    auth = _str(row, "auth", where)
    if auth != "bearer" and not (auth.startswith("header:") and _HEADER_NAME.match(auth[7:])):
        raise _fail(where, "'auth' must be 'bearer' or 'header:<Header-Name>'")
    dropped, notes = _unsupported(row, where)
    renames = _pairs(row.get("rename_params"), where, "rename_params")
    for source, target in renames:
        if {source, target} & _PROTECTED_PARAMS or source == target:
            raise _fail(where, f"rename {source!r} -> {target!r} is not allowed")
        if source in dropped or target in dropped:
            raise _fail(where, f"rename {source!r} -> {target!r} touches an unsupported field")
    bounds = {
        k: _bound(row, k, where) for k in ("min_temperature", "max_temperature", "min_top_p", "max_top_p")
    }
    for name in ("temperature", "top_p"):
        low, high = bounds[f"min_{name}"], bounds[f"max_{name}"]
        if low is not None and high is not None and low > high:
            raise _fail(where, f"min_{name} is above max_{name}")
    reasoning = row.get("reasoning_field")
    if reasoning is not None and (not isinstance(reasoning, str) or not reasoning):
        raise _fail(where, "'reasoning_field' must be a field name or null")
    stream_usage = row.get("stream_usage")
    if not isinstance(stream_usage, bool):
        raise _fail(where, "'stream_usage' must be true or false")
    headers = _pairs(row.get("extra_headers"), where, "extra_headers")
    for header, _ in headers:
        if not _HEADER_NAME.match(header) or header.lower() in _RESERVED_HEADERS:
            raise _fail(where, f"extra header {header!r} is not allowed")
    return Vendor(
        id=vendor_id,
        name=_str(row, "name", where),
        base_url=base_url,
        hosts=hosts,
        auth=auth,
        unsupported_params=dropped,
        unsupported_notes=notes,
        model_rules=_model_rules(row.get("model_rules"), where),
        rename_params=renames,
        min_temperature=bounds["min_temperature"],
        max_temperature=bounds["max_temperature"],
        min_top_p=bounds["min_top_p"],
        max_top_p=bounds["max_top_p"],
        reasoning_field=reasoning,
        stream_usage=stream_usage,
        extra_headers=headers,
        notes=_str(row, "notes", where, default=""),
        source=_str(row, "source", where),
    )


def parse_vendors(data: Any) -> tuple[Vendor, ...]:
    """Validate a parsed vendor table; ids and hosts must be unique across rows."""
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("vendors"), list):
        raise ValueError("vendors.yaml: expected {version: 1, vendors: [...]}")
    vendors = tuple(_vendor(row, i) for i, row in enumerate(data["vendors"]))
    seen_ids: set[str] = set()
    seen_hosts: dict[str, str] = {}
    for vendor in vendors:
        if vendor.id in seen_ids:
            raise _fail(f"vendor {vendor.id!r}", "duplicate id")
        seen_ids.add(vendor.id)
        for host in vendor.hosts:
            if host in seen_hosts:
                raise _fail(f"vendor {vendor.id!r}", f"host {host!r} is also {seen_hosts[host]!r}'s")
            seen_hosts[host] = vendor.id
    return vendors


@functools.cache
def _shipped() -> tuple[Vendor, ...]:
    text = resources.files("omnirelay.catalog").joinpath("vendors.yaml").read_text(encoding="utf-8")
    return parse_vendors(yaml.safe_load(text))


@functools.cache
def _by_host() -> dict[str, Vendor]:
    return {host: vendor for vendor in _shipped() for host in vendor.hosts}


def load_vendors() -> dict[str, Vendor]:
    """The shipped vendor table, id -> row (read and validated once; a new dict each call)."""
    return {vendor.id: vendor for vendor in _shipped()}


def vendor_for(channel: ChannelConfig) -> Vendor | None:
    """The row whose host is the host of the channel's ``base_url``, or None (plain pass-through)."""
    return _by_host().get(host_of(channel.base_url))
