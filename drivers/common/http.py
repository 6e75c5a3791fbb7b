"""The HTTP connection every REST/Query driver is built on.

One :class:`Connection` per driver instance. It keeps one ``requests.Session``
per thread (``requests`` sessions are not documented as thread-safe), so a
driver may be shared between threads and still reuse connections.

Retries: on 429/502/503/504, connection errors and timeouts, with exponential
backoff and full jitter, honouring ``Retry-After`` -- but only for idempotent
methods (GET, HEAD, PUT, DELETE, OPTIONS) or calls marked ``idempotent=True``
(a POST carrying a provider idempotency token). Afterwards every failure is
raised as a :mod:`drivers.errors` class; providers refine the mapping with
``error_mapper``. Logged URLs and headers have their secrets redacted.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from drivers.errors import (
    AuthError,
    DriverError,
    InvalidRequest,
    NotFound,
    ProviderError,
    QuotaExceeded,
    RateLimited,
)

LOG = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
SECRET_WORDS = ("authorization", "token", "secret", "password", "signature", "key", "credential")

ErrorMapper = Callable[[requests.Response], DriverError | None]


def is_secret_name(name: str) -> bool:
    """Whether a header or parameter name probably carries a secret (an Azure
    SAS's ``sig`` and a Swift temp URL's ``temp_url_sig`` too)."""
    lowered = name.lower()
    return (
        lowered == "sig"
        or lowered.endswith("_sig")
        or any(word in lowered for word in SECRET_WORDS)
    )


def redact_url(url: str) -> str:
    """The URL with secret-looking query values and any userinfo replaced."""
    parts = urlsplit(url)
    query = urlencode(
        [
            (name, "***" if is_secret_name(name) else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers with secret-looking values replaced."""
    return {name: "***" if is_secret_name(name) else value for name, value in headers.items()}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def default_error(response: requests.Response, provider: str | None = None) -> DriverError:
    """Map an error response to the tree by status code alone."""
    status = response.status_code
    message = f"HTTP {status}: {_snippet(response.text)}"
    if status in (401, 403):
        return AuthError(message, provider=provider)
    if status == 404:
        return NotFound(message, provider=provider)
    if status == 413:
        return QuotaExceeded(message, provider=provider)
    if status == 429:
        return RateLimited(
            message,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            provider=provider,
        )
    if status in (400, 405, 409, 422):
        return InvalidRequest(message, provider=provider)
    return ProviderError(message, transient=status >= 500, status=status, provider=provider)


def decode_json(response: requests.Response, method: str, provider: str | None) -> Any:
    """A response's JSON body (``None`` when empty); garbage is a ProviderError."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise ProviderError(
            f"{method} {redact_url(response.url)}: invalid JSON in response "
            f"({_snippet(response.text, 80)!r})",
            status=response.status_code,
            provider=provider,
        ) from None


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


class Connection:
    """HTTP access to one provider endpoint (see the module docstring).

    ``timeout`` is ``(connect, read)`` seconds; ``max_retries`` counts the
    extra attempts after the first; backoff waits are drawn from
    ``[0, backoff * 2**attempt]`` and never exceed ``max_backoff``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        provider: str | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        error_mapper: ErrorMapper | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.provider = provider
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.error_mapper = error_mapper
        self.headers = dict(headers or {})
        self.verify = verify
        self._sleep = sleep
        self._local = threading.local()
        self._random = random.Random()

    @property
    def session(self) -> requests.Session:
        """This thread's session."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update(self.headers)
            session.verify = self.verify
            self._local.session = session
        return session

    def close(self) -> None:
        """Close this thread's session."""
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None

    def url(self, path: str) -> str:
        """An absolute URL: ``path`` relative to the base URL unless absolute."""
        if path.startswith(("http://", "https://")):
            return path
        return urljoin(self.base_url, path.lstrip("/"))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | tuple[float, float] | None = None,
        idempotent: bool | None = None,
        expect: tuple[int, ...] = (),
        stream: bool = False,
    ) -> requests.Response:
        """Send a request, retrying where safe; return a 2xx (or ``expect``) response.

        With ``stream``, the body is read by the caller (``iter_content``).
        Raises a :class:`DriverError` subclass for every other outcome.
        """
        method = method.upper()
        retry = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        url = self.url(path)
        attempts = self.max_retries + 1 if retry else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            started = time.monotonic()
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=headers,
                    timeout=timeout or self.timeout,
                    stream=stream,
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                LOG.debug(
                    "%s %s failed after %.3fs: %s",
                    method,
                    redact_url(url),
                    time.monotonic() - started,
                    type(error).__name__,
                )
                if last:
                    kind = "timed out" if isinstance(error, requests.Timeout) else "unreachable"
                    raise ProviderError(
                        f"{method} {redact_url(url)}: {kind}",
                        transient=True,
                        provider=self.provider,
                    ) from None
                self._sleep(self._backoff(attempt, None))
                continue
            except requests.RequestException as error:
                raise InvalidRequest(
                    f"{method} {redact_url(url)}: {type(error).__name__}", provider=self.provider
                ) from None
            LOG.debug(
                "%s %s -> %s in %.3fs",
                method,
                redact_url(response.url),
                response.status_code,
                time.monotonic() - started,
            )
            if response.ok or response.status_code in expect:
                return response
            if response.status_code in RETRY_STATUSES and not last:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                response.close()
                self._sleep(self._backoff(attempt, retry_after))
                continue
            raise self._map_error(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        return self._random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))

    def _map_error(self, response: requests.Response) -> DriverError:
        if self.error_mapper is not None:
            mapped = self.error_mapper(response)
            if mapped is not None:
                return mapped
        return default_error(response, self.provider)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and decode its JSON body (``None`` for an empty body)."""
        return decode_json(self.request(method, path, **kwargs), method, self.provider)

    def xml(self, method: str, path: str, **kwargs: Any) -> ElementTree.Element:
        """Send a request and parse its XML body."""
        response = self.request(method, path, **kwargs)
        try:
            return ElementTree.fromstring(response.content)
        except ElementTree.ParseError:
            raise ProviderError(
                f"{method} {redact_url(response.url)}: invalid XML in response "
                f"({_snippet(response.text, 80)!r})",
                status=response.status_code,
                provider=self.provider,
            ) from None
