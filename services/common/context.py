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

from drivers import DriverType, get_driver, pricing
from drivers.compute.base import NodeDriver
from services.common.config import Config
from services.common.crypto import CredentialCipher
from services.common.db.models import Account
from services.common.db.session import SessionFactory, make_engine, make_session_factory
from services.common.messaging import Publisher
from services.common.outbox import Outbox

LOG = logging.getLogger(__name__)


class DriverFactory:
    """Driver instances per account, built once and shared by threads.

    Drivers are thread-safe, and sharing them keeps connection pools (and the
    dummy provider's in-memory state) alive across messages.
    """

    def __init__(self, cipher: CredentialCipher) -> None:
        self.cipher = cipher
        self._drivers: dict[tuple[str, str], NodeDriver] = {}
        self._lock = threading.Lock()

    def for_account(self, account: Account) -> NodeDriver:
        fingerprint = hashlib.sha256(
            (account.credentials + json.dumps(account.options, sort_keys=True)).encode()
        ).hexdigest()
        key = (account.id, fingerprint)
        with self._lock:
            driver = self._drivers.get(key)
            if driver is None:
                driver_class = get_driver(DriverType.COMPUTE, account.provider)
                arguments: dict[str, Any] = {
                    **self.cipher.decrypt(account.credentials),
                    **account.options,
                }
                driver = driver_class(**arguments)
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
