"""Prices per hour in USD, by provider, size id and region.

Three layers, the later winning: the data file bundled with the package, a
newer file downloaded by :func:`update_pricing` (kept in a cache file), and
an operator's override file (negotiated discounts). A price nobody knows is
absent and reads as ``None`` -- never ``0.0``.

The file format (``drivers/data/pricing.json``)::

    {"format": 1, "updated": "2025-03-02", "source": "...",
     "compute": {"<provider>": {"<size id>": {"<region>": 0.0104}}}}
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import tempfile
import threading
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

    def price(self, provider: str, size_id: str, region: str | None) -> float | None:
        for table in (self.overrides, self.prices):
            by_region = table.get(provider, {}).get(size_id, {})
            if region in by_region:
                return by_region[region]
            if "*" in by_region:
                return by_region["*"]
        return None


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
        self._table = self._load()

    @property
    def updated(self) -> datetime.date:
        """The date of the price data in use (not of the overrides)."""
        return self._table.updated

    def get_price(self, provider: str, size_id: str, region: str | None) -> float | None:
        """USD per hour, or ``None`` when unknown."""
        return self._table.price(provider, size_id, region)

    def set_override_file(self, path: str | os.PathLike[str] | None) -> None:
        """Use ``path`` as the operator's overrides (``None`` drops them)."""
        with self._lock:
            self.override_path = Path(path) if path else None
            self._table = self._load()

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
            self._table = self._load()
        LOG.info("pricing data updated from %s to %s", url, data["updated"])
        return self._table.updated

    def _load(self) -> PriceTable:
        data = parse_pricing(bundled_path().read_bytes(), what="bundled pricing data")
        if self.cache_path is not None and self.cache_path.exists():
            try:
                data = parse_pricing(self.cache_path.read_bytes(), what=str(self.cache_path))
            except InvalidPricingData:
                LOG.warning("ignoring invalid cached pricing file %s", self.cache_path)
        overrides: dict[str, Any] = {}
        if self.override_path is not None:
            try:
                override_data = json.loads(self.override_path.read_bytes())
            except (OSError, ValueError) as error:
                raise InvalidPricingData(f"price overrides {self.override_path}: {error}") from None
            _validate(override_data, OVERRIDE_SCHEMA, f"price overrides {self.override_path}")
            overrides = override_data["compute"]
        return PriceTable(
            updated=datetime.date.fromisoformat(data["updated"]),
            prices=data["compute"],
            overrides=overrides,
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
