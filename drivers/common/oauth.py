"""OAuth2 access tokens from a token endpoint, cached until shortly before
they end and renewed by whichever thread needs one first. What is posted
(a signed JWT, client credentials) is each flavour's own :meth:`form`; the
secrets in it never appear in a message."""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import requests

from drivers.errors import AuthError, ProviderError

T = TypeVar("T")

#: Renew this long before the token's end.
RENEW_BEFORE = 60.0


class AccessTokens(abc.ABC):
    """Tokens from one endpoint; thread-safe."""

    def __init__(
        self,
        token_uri: str,
        *,
        provider: str,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        who: str = "the client",
    ) -> None:
        self.token_uri = token_uri
        self.provider = provider
        self.timeout = timeout
        self.clock = clock
        self.who = who
        self._token: str | None = None
        self._until = 0.0
        self._lock = threading.Lock()
        self.exchanges = 0

    @abc.abstractmethod
    def form(self, now: float) -> dict[str, str]:
        """The form to post for a new token."""

    def token(self) -> str:
        with self._lock:
            if self._token is None or self.clock() >= self._until - RENEW_BEFORE:
                self._exchange()
            assert self._token is not None
            return self._token

    def forget(self) -> None:
        """Drop the cached token (after the API refused it)."""
        with self._lock:
            self._token = None

    def authorized(self, send: Callable[[dict[str, str]], T]) -> T:
        """``send(headers)`` with the current token; a token the API refuses
        (:class:`AuthError`) is renewed once, then the refusal stands."""
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.token()}"}  # a refused key fails here
            try:
                return send(headers)
            except AuthError:
                if attempt == 2:
                    raise
                self.forget()
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(self) -> None:
        now = self.clock()
        try:
            response = requests.post(self.token_uri, data=self.form(now), timeout=self.timeout)
        except requests.RequestException as error:
            raise ProviderError(
                f"token endpoint unreachable: {type(error).__name__}",
                transient=True,
                provider=self.provider,
            ) from None
        if response.status_code in (400, 401, 403):
            raise AuthError(
                f"the token endpoint refused {self.who} ({response.status_code})",
                provider=self.provider,
            )
        if not response.ok:
            raise ProviderError(
                f"token endpoint answered {response.status_code}",
                transient=response.status_code >= 500,
                provider=self.provider,
            )
        try:
            body = response.json()
            token, lifetime = str(body["access_token"]), float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise ProviderError(
                "the token endpoint's answer has no access_token", provider=self.provider
            ) from None
        self._token, self._until = token, now + lifetime
        self.exchanges += 1
