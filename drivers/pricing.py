"""Prices per hour in USD, by provider, size id and region.

Layers, the later winning: the data file bundled with the package (or a
newer file downloaded by :func:`update_pricing`, kept in a cache file),
prices fetched from the providers' price APIs (:class:`FetchedPrice`, handed
in with :meth:`PricingStore.set_fetched`), and an operator's override file
(negotiated discounts). A price nobody knows is absent and reads as ``None``
-- never ``0.0``. :meth:`PricingStore.quote` says which layer a price came
from and how old it is.

The file format (``drivers/data/pricing.json``)::

    {"format": 1, "updated": "2025-03-02", "source": "...",
     "compute": {"<provider>": {"<size id>": {"<region>": 0.0104}}}}
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import requests

LOG = logging.getLogger(__name__)

MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class FetchedPrice:
    """One price a provider's price API gave: per hour, for one size in one region.

    ``kind`` is ``on_demand`` or ``spot`` (spot, preemptible and low-priority
    prices are kept apart and never used for placement unless asked).
    """

    provider: str
    region: str
    size: str
    price: float
    currency: str
    kind: str
    source: str
    fetched_at: datetime.datetime


@dataclass(frozen=True)
class Quote:
    """A price with where it came from (``bundled``, ``fetched`` or
    ``override``; ``None`` when unknown) and as of when; the spot price, when
    fetched, beside it."""

    price: float | None
    source: str | None
    as_of: datetime.datetime | None
    spot_price: float | None = None

    def scaled(self, factor: float) -> Quote:
        """The same quote with its prices multiplied by ``factor``."""
        return dataclasses.replace(
            self,
            price=None if self.price is None else round(self.price * factor, 6),
            spot_price=None if self.spot_price is None else round(self.spot_price * factor, 6),
        )


UNKNOWN = Quote(None, None, None)

#: What :meth:`PricingStore.fetched_version` answers before any prices were fetched.
NOTHING_FETCHED = object()

#: Fetched prices of one provider: size -> region -> (price, fetched at).
Fetched = dict[str, dict[str, tuple[float, datetime.datetime]]]


PRICING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "updated", "compute"],
    "properties": {
        "format": {"const": 1},
        "updated": {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "source": {"type": "string"},
        "compute": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
                },
            },
        },
    },
}

OVERRIDE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["compute"],
    "properties": {"compute": PRICING_SCHEMA["properties"]["compute"]},
}


class InvalidPricingData(ValueError):
    """A pricing or override file does not match the expected format."""


@dataclass(frozen=True)
class PriceTable:
    """One immutable snapshot of the merged prices."""

    updated: datetime.date
    prices: dict[str, dict[str, dict[str, float]]]
    overrides: dict[str, dict[str, dict[str, float]]]
    overrides_as_of: datetime.datetime | None = None
    #: provider -> kind (on_demand, spot) -> fetched prices
    fetched: dict[str, dict[str, Fetched]] = dataclasses.field(default_factory=dict)

    def price(self, provider: str, size_id: str, region: str | None) -> float | None:
        return self.quote(provider, size_id, region).price

    def quote(self, provider: str, size_id: str, region: str | None) -> Quote:
        fetched = self.fetched.get(provider, {})
        spot = fetched.get("spot", {}).get(size_id, {}).get(region or "")
        spot_price = spot[0] if spot else None
        override = _lookup(self.overrides, provider, size_id, region)
        if override is not None:
            return Quote(override, "override", self.overrides_as_of, spot_price)
        on_demand = fetched.get("on_demand", {}).get(size_id, {}).get(region or "")
        if on_demand is not None:
            return Quote(on_demand[0], "fetched", on_demand[1], spot_price)
        bundled = _lookup(self.prices, provider, size_id, region)
        if bundled is not None:
            as_of = datetime.datetime.combine(self.updated, datetime.time(), datetime.UTC)
            return Quote(bundled, "bundled", as_of, spot_price)
        return Quote(None, None, None, spot_price)


def _lookup(
    table: dict[str, dict[str, dict[str, float]]], provider: str, size_id: str, region: str | None
) -> float | None:
    by_region = table.get(provider, {}).get(size_id, {})
    if region in by_region:
        return by_region[region]
    return by_region.get("*")


def _validate(data: Any, schema: dict[str, Any], what: str) -> None:
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "top level"
        raise InvalidPricingData(f"{what}: {error.message} (at {where})") from None


def parse_pricing(text: str | bytes, what: str = "pricing data") -> dict[str, Any]:
    """Parse and validate a pricing file; raises :class:`InvalidPricingData`."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise InvalidPricingData(f"{what}: not JSON ({error})") from None
    _validate(data, PRICING_SCHEMA, what)
    return data  # type: ignore[no-any-return]


def bundled_path() -> Path:
    """Path of the pricing file that ships with the package."""
    return Path(str(resources.files("drivers") / "data" / "pricing.json"))


class PricingStore:
    """Thread-safe holder of the current :class:`PriceTable`.

    Reads replace nothing; :meth:`update` and :meth:`set_override_file` swap
    in a whole new snapshot, so readers never see half a file.
    """

    def __init__(
        self,
        *,
        cache_path: str | os.PathLike[str] | None = None,
        override_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.cache_path = Path(cache_path) if cache_path else None
        self.override_path = Path(override_path) if override_path else None
        self._lock = threading.Lock()
        self._versions: dict[str, object] = {}
        self._table = self._load()

    @property
    def updated(self) -> datetime.date:
        """The date of the price data in use (not of the overrides)."""
        return self._table.updated

    def get_price(self, provider: str, size_id: str, region: str | None) -> float | None:
        """USD per hour, or ``None`` when unknown."""
        return self._table.price(provider, size_id, region)

    def quote(self, provider: str, size_id: str, region: str | None) -> Quote:
        """The price with its source and date (:data:`UNKNOWN` when nobody knows it)."""
        return self._table.quote(provider, size_id, region)

    def set_fetched(
        self, provider: str, prices: Iterable[FetchedPrice], version: object = None
    ) -> None:
        """Use ``prices`` as everything fetched for ``provider`` (replacing what
        was fetched before; an empty list drops it). ``version`` names them
        (e.g. when they were fetched), for :meth:`fetched_version`."""
        by_kind: dict[str, Fetched] = {}
        for price in prices:
            by_size = by_kind.setdefault(price.kind, {}).setdefault(price.size, {})
            by_size[price.region] = (price.price, price.fetched_at)
        with self._lock:
            fetched = {**self._table.fetched, provider: by_kind}
            self._table = dataclasses.replace(self._table, fetched=fetched)
            self._versions[provider] = version

    def fetched_version(self, provider: str) -> object:
        """The ``version`` of the prices fetched for ``provider`` in use
        (:data:`NOTHING_FETCHED` when none were handed in)."""
        return self._versions.get(provider, NOTHING_FETCHED)

    def set_override_file(self, path: str | os.PathLike[str] | None) -> None:
        """Use ``path`` as the operator's overrides (``None`` drops them)."""
        with self._lock:
            self.override_path = Path(path) if path else None
            self._table = self._load(self._table.fetched)

    def update(self, url: str, *, timeout: float = 30.0) -> datetime.date:
        """Download a newer file from ``url``, validate it, replace the cache.

        The cache file is replaced atomically; on any error (network, not
        JSON, wrong format) the data in use stays as it was and the error is
        raised. Returns the new data's date.
        """
        if self.cache_path is None:
            raise InvalidPricingData("no pricing cache path is configured")
        response = requests.get(url, timeout=timeout, stream=True)
        response.raise_for_status()
        body = bytearray()
        for chunk in response.iter_content(chunk_size=65536):
            body.extend(chunk)
            if len(body) > MAX_DOWNLOAD_BYTES:
                raise InvalidPricingData(
                    f"pricing data from {url} exceeds {MAX_DOWNLOAD_BYTES} bytes"
                )
        data = parse_pricing(bytes(body), what=f"pricing data from {url}")
        with self._lock:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(
                dir=self.cache_path.parent, prefix=".pricing-", suffix=".json"
            )
            try:
                with os.fdopen(handle, "w") as stream:
                    json.dump(data, stream)
                    stream.flush()
                    os.fsync(stream.fileno())
                os.replace(temporary, self.cache_path)
            except BaseException:
                os.unlink(temporary)
                raise
            self._table = self._load(self._table.fetched)
        LOG.info("pricing data updated from %s to %s", url, data["updated"])
        return self._table.updated

    def _load(self, fetched: dict[str, dict[str, Fetched]] | None = None) -> PriceTable:
        data = parse_pricing(bundled_path().read_bytes(), what="bundled pricing data")
        if self.cache_path is not None and self.cache_path.exists():
            try:
                data = parse_pricing(self.cache_path.read_bytes(), what=str(self.cache_path))
            except InvalidPricingData:
                LOG.warning("ignoring invalid cached pricing file %s", self.cache_path)
        overrides: dict[str, Any] = {}
        overrides_as_of = None
        if self.override_path is not None:
            try:
                override_data = json.loads(self.override_path.read_bytes())
            except (OSError, ValueError) as error:
                raise InvalidPricingData(f"price overrides {self.override_path}: {error}") from None
            _validate(override_data, OVERRIDE_SCHEMA, f"price overrides {self.override_path}")
            overrides = override_data["compute"]
            overrides_as_of = datetime.datetime.fromtimestamp(
                self.override_path.stat().st_mtime, datetime.UTC
            )
        return PriceTable(
            updated=datetime.date.fromisoformat(data["updated"]),
            prices=data["compute"],
            overrides=overrides,
            overrides_as_of=overrides_as_of,
            fetched=fetched or {},
        )


_default_store: PricingStore | None = None
_default_lock = threading.Lock()


def default_store() -> PricingStore:
    """The process-wide store, configured by ``OVERCAST_PRICING_CACHE`` and
    ``OVERCAST_PRICING_OVERRIDES`` when set."""
    global _default_store
    with _default_lock:
        if _default_store is None:
            _default_store = PricingStore(
                cache_path=os.environ.get("OVERCAST_PRICING_CACHE"),
                override_path=os.environ.get("OVERCAST_PRICING_OVERRIDES"),
            )
        return _default_store


def configure_default_store(
    *, cache_path: str | None = None, override_path: str | None = None
) -> PricingStore:
    """Replace the process-wide store (services call this from their config)."""
    global _default_store
    store = PricingStore(cache_path=cache_path or None, override_path=override_path or None)
    with _default_lock:
        _default_store = store
    return store


def get_price(provider: str, size_id: str, region: str | None) -> float | None:
    """USD per hour from the default store, or ``None`` when unknown."""
    return default_store().get_price(provider, size_id, region)


def update_pricing(url: str, *, timeout: float = 30.0) -> datetime.date:
    """Update the default store from ``url`` (see :meth:`PricingStore.update`)."""
    return default_store().update(url, timeout=timeout)
