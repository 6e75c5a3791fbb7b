"""What every service process is given: config, sessions, publisher, drivers.

Services receive a :class:`ServiceContext` instead of reaching for globals,
so tests can swap any part (a driver factory, a clock) without patching.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drivers import DriverType, account_driver, get_driver, pricing
from drivers.compute.base import NodeDriver
from drivers.errors import InvalidRequest, NotSupported
from drivers.loadbalancer.base import LoadBalancerDriver
from drivers.storage.base import StorageDriver
from services.common import metrics
from services.common.config import Config
from services.common.crypto import CredentialCipher
from services.common.db.models import Account
from services.common.db.session import SessionFactory, make_engine, make_session_factory
from services.common.messaging import Publisher
from services.common.outbox import Outbox

LOG = logging.getLogger(__name__)


#: Option sections that apply to one kind of driver only.
KIND_SECTIONS = frozenset(kind.value for kind in DriverType)


def driver_arguments(
    credentials: dict[str, Any], options: dict[str, Any], kind: DriverType
) -> dict[str, Any]:
    """A driver's keyword arguments: the credentials, the options shared by
    every kind, then the options of the ``kind`` section (``{"storage":
    {"root": ...}}``)."""
    shared = {name: value for name, value in options.items() if name not in KIND_SECTIONS}
    return {**credentials, **shared, **(options.get(kind.value) or {})}


class DriverFactory:
    """Driver instances per account and kind, built once and shared by threads.

    Drivers are thread-safe, and sharing them keeps connection pools (and the
    dummy provider's in-memory state) alive across messages.
    """

    def __init__(self, cipher: CredentialCipher) -> None:
        self.cipher = cipher
        self._drivers: dict[tuple[str, str, DriverType], Any] = {}
        self._lock = threading.Lock()

    def for_account(self, account: Account) -> NodeDriver:
        """The account's compute driver."""
        return self._driver(account, DriverType.COMPUTE)  # type: ignore[no-any-return]

    def storage_for(self, account: Account) -> StorageDriver:
        """The account's storage driver."""
        return self._driver(account, DriverType.STORAGE)  # type: ignore[no-any-return]

    def balancer_for(self, account: Account) -> LoadBalancerDriver:
        """The account's load-balancer driver."""
        return self._driver(account, DriverType.LOADBALANCER)  # type: ignore[no-any-return]

    def _driver(self, account: Account, kind: DriverType) -> Any:
        name = account_driver(account.provider, kind)
        if name is None or not account.serves(kind):
            raise NotSupported(
                f"account {account.name} ({account.provider}) serves no {kind.value}",
                provider=account.provider,
            )
        fingerprint = hashlib.sha256(
            (account.credentials + json.dumps(account.options, sort_keys=True)).encode()
        ).hexdigest()
        key = (account.id, fingerprint, kind)
        with self._lock:
            driver = self._drivers.get(key)
            if driver is None:
                arguments = driver_arguments(
                    self.cipher.decrypt(account.credentials), account.options, kind
                )
                try:
                    driver = get_driver(kind, name)(**arguments)
                except TypeError as error:  # options missing or unknown (no values shown)
                    raise InvalidRequest(
                        f"account {account.name}: its {kind.value} options do not fit "
                        f"the {name} driver ({error})",
                        provider=account.provider,
                    ) from None
                self._drivers[key] = driver
        return driver


@dataclass
class ServiceContext:
    config: Config
    sessions: SessionFactory
    publisher: Publisher
    drivers: DriverFactory
    cipher: CredentialCipher
    outbox: Outbox
    clock: Callable[[], float] = time.time
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    def close(self) -> None:
        self.outbox.close()
        self.publisher.close()
        bind = self.sessions.kw.get("bind")
        if bind is not None:
            bind.dispose()


def build_context(config: Config) -> ServiceContext:
    """Wire a process's dependencies from its config."""
    metrics.configure(config.metrics.multiprocess_dir)
    pricing.configure_default_store(
        cache_path=config.pricing.cache_file, override_path=config.pricing.overrides_file
    )
    cipher = CredentialCipher(config.security.encryption_key)
    sessions = make_session_factory(make_engine(config.database))
    publisher = Publisher(config.messaging)
    return ServiceContext(
        config=config,
        sessions=sessions,
        publisher=publisher,
        drivers=DriverFactory(cipher),
        cipher=cipher,
        outbox=Outbox(sessions, publisher),
    )
