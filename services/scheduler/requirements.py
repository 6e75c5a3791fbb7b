"""What a node asks for, and offers as plain values the filters can judge."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.common.db.models import Account, Offer, utcnow


@dataclass(frozen=True)
class Requirements:
    """A placement request. Empty tuples and ``None`` mean "any"."""

    min_ram_mb: int = 0
    max_ram_mb: int | None = None
    min_vcpus: int = 0
    max_vcpus: int | None = None
    min_disk_gb: int = 0
    min_gpus: int = 0
    max_gpus: int | None = None
    image: str | None = None
    countries: tuple[str, ...] = ()
    exclude_countries: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    exclude_regions: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    exclude_zones: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    exclude_providers: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    exclude_accounts: tuple[str, ...] = ()
    max_price: float | None = None
    #: Only offers whose price is as of this time or later (``skip_stale_prices``).
    prices_since: datetime.datetime | None = None

    @classmethod
    def from_spec(
        cls, spec: dict[str, Any], *, stale_after: datetime.timedelta | None = None
    ) -> Requirements:
        """The requirements of a node spec; with ``skip_stale_prices``, prices
        older than ``stale_after`` do not count."""

        def strings(name: str, upper: bool = False) -> tuple[str, ...]:
            values: Sequence[str] = spec.get(name) or ()
            return tuple(value.upper() if upper else value for value in values)

        def integer(name: str) -> int | None:
            value = spec.get(name)
            return None if value is None else int(value)

        return cls(
            min_ram_mb=integer("min_ram_mb") or 0,
            max_ram_mb=integer("max_ram_mb"),
            min_vcpus=integer("min_vcpus") or 0,
            max_vcpus=integer("max_vcpus"),
            min_disk_gb=integer("min_disk_gb") or 0,
            min_gpus=integer("min_gpus") or 0,
            max_gpus=integer("max_gpus"),
            image=spec.get("image"),
            countries=strings("countries", upper=True),
            exclude_countries=strings("exclude_countries", upper=True),
            regions=strings("regions"),
            exclude_regions=strings("exclude_regions"),
            zones=strings("zones"),
            exclude_zones=strings("exclude_zones"),
            providers=strings("providers"),
            exclude_providers=strings("exclude_providers"),
            accounts=strings("accounts"),
            exclude_accounts=strings("exclude_accounts"),
            max_price=spec.get("max_price"),
            prices_since=utcnow() - stale_after
            if spec.get("skip_stale_prices") and stale_after is not None
            else None,
        )

    def describe(self) -> str:
        """A short description of what was asked, for error messages."""
        parts = [
            f"{name}={value}" for name, value in self.__dict__.items() if value not in (0, (), None)
        ]
        return ", ".join(parts) or "no requirements"


@dataclass(frozen=True)
class OfferData:
    """An offer as a plain value (what the filters' Python predicates judge)."""

    account_id: str
    account_name: str
    provider: str
    location_id: str
    country: str
    region: str | None
    zone: str | None
    size_id: str
    ram_mb: int
    vcpus: int
    disk_gb: int
    gpus: int
    price_per_hour: float | None
    price_as_of: datetime.datetime | None = None
    images: frozenset[str] = frozenset()  # image ids and names available at the location
    account_cooldown_until: datetime.datetime | None = None

    @classmethod
    def from_row(
        cls, offer: Offer, account: Account, images: frozenset[str] = frozenset()
    ) -> OfferData:
        return cls(
            account_id=offer.account_id,
            account_name=account.name,
            provider=offer.provider,
            location_id=offer.location_id,
            country=offer.country,
            region=offer.region,
            zone=offer.zone,
            size_id=offer.size_id,
            ram_mb=offer.ram_mb,
            vcpus=offer.vcpus,
            disk_gb=offer.disk_gb,
            gpus=offer.gpus,
            price_per_hour=offer.price_per_hour,
            price_as_of=offer.price_as_of,
            images=images,
            account_cooldown_until=account.cooldown_until,
        )

    @property
    def zone_key(self) -> str:
        """The failure domain: the zone, or the location when the provider has none."""
        return self.zone or f"{self.account_id}/{self.location_id}"
