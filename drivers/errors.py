"""The driver error tree.

Every driver maps every failure to one of these classes, so that orchestration
can decide from the class alone what to do next::

    DriverError                 base of everything a driver raises on purpose
    ├── AuthError               credentials rejected or not allowed: fail, do not retry
    ├── NotFound                the resource does not exist (any more)
    │   ├── ContainerNotFound   a storage container
    │   └── ObjectNotFound      a stored object
    ├── InvalidRequest          the provider rejected the request as malformed: fail
    │   ├── ContainerNotEmpty   deleting a container that still holds objects
    │   └── ContainerExists     creating a container whose name is taken
    ├── HashMismatch            bytes stored or read differ from the bytes sent: nothing kept
    ├── NotSupported            the driver does not implement this operation
    ├── RateLimited             slow down; ``retry_after`` seconds if the provider said
    ├── CapacityError           no capacity for that size at that location: fail over
    ├── QuotaExceeded           the account's limit is reached: fail over
    ├── ProviderError           5xx or an unknown failure; ``transient`` says retry
    ├── HostKeyMismatch         an SSH host key changed since first use: fail
    └── DeploymentError         a deployment step failed (node, step, exit status, output)

Messages never contain credentials: drivers build them from provider error
codes and messages, not from requests.
"""

from __future__ import annotations


class DriverError(Exception):
    """Base class of every error a driver raises on purpose."""

    #: Whether retrying the same call later may succeed.
    transient: bool = False

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider

    def __str__(self) -> str:
        return f"{self.provider}: {self.message}" if self.provider else self.message


class AuthError(DriverError):
    """The provider rejected the credentials, or they do not allow the call."""


class NotFound(DriverError):
    """The node, image, size, volume or key pair does not exist."""


class ContainerNotFound(NotFound):
    """The storage container does not exist."""


class ObjectNotFound(NotFound):
    """The object does not exist in its container."""


class InvalidRequest(DriverError):
    """The provider rejected the request as invalid; repeating it will not help."""


class ContainerNotEmpty(InvalidRequest):
    """The container still holds objects; delete them first."""


class ContainerExists(InvalidRequest):
    """A container with that name exists already."""


class HashMismatch(DriverError):
    """The checksum of what was stored or read is not that of the bytes sent.

    An upload that raises it has kept nothing; a download that raises it has
    written nothing where it was asked to.
    """

    def __init__(
        self, message: str, *, expected: str, actual: str, provider: str | None = None
    ) -> None:
        super().__init__(f"{message}: expected {expected}, got {actual}", provider=provider)
        self.expected = expected
        self.actual = actual


class NotSupported(DriverError):
    """The driver does not implement the operation (see ``NodeDriver.features``)."""


class RateLimited(DriverError):
    """The provider throttled the call; wait ``retry_after`` seconds if known."""

    transient = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, provider: str | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class CapacityError(DriverError):
    """No capacity for the size at the location; another placement may work."""


class QuotaExceeded(DriverError):
    """The account's quota is exhausted; another account may work."""


class ProviderError(DriverError):
    """A provider-side failure (5xx, garbage, timeout) or an unmapped error."""

    def __init__(
        self,
        message: str,
        *,
        transient: bool = False,
        status: int | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.transient = transient
        self.status = status


class HostKeyMismatch(DriverError):
    """The SSH host key differs from the one recorded on first use."""

    def __init__(self, host: str, expected: str, seen: str) -> None:
        super().__init__(f"host key of {host} changed: recorded {expected}, offered {seen}")
        self.host = host
        self.expected = expected
        self.seen = seen


class DeploymentError(DriverError):
    """A deployment step failed, or the node could not be reached for it."""

    def __init__(
        self,
        message: str,
        *,
        node_id: str,
        step: str | None = None,
        exit_status: int | None = None,
        stdout_tail: str = "",
        stderr_tail: str = "",
    ) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.step = step
        self.exit_status = exit_status
        self.stdout_tail = stdout_tail
        self.stderr_tail = stderr_tail

    def __str__(self) -> str:
        parts = [f"node {self.node_id}"]
        if self.step:
            parts.append(f"step {self.step}")
        if self.exit_status is not None:
            parts.append(f"exit status {self.exit_status}")
        text = f"{self.message} ({', '.join(parts)})"
        if self.stderr_tail:
            text += f": {self.stderr_tail.strip()}"
        return text
