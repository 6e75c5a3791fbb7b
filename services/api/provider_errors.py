"""Driver errors as API answers, in one place: a provider's failure is the
client's 4xx only when the client caused it, otherwise a 5xx naming the
provider. Driver messages carry no credentials (see ``drivers/errors.py``)."""

from __future__ import annotations

from drivers import errors as driver
from services.common import errors as service


def from_driver(error: driver.DriverError) -> service.ServiceError:
    message = str(error)
    if isinstance(error, driver.NotFound):
        return service.NotFound(message)
    if isinstance(error, driver.ContainerNotEmpty | driver.ContainerExists):
        return service.Conflict(message)
    if isinstance(error, driver.InvalidRequest):
        return service.InvalidInput(message)
    if isinstance(error, driver.HashMismatch):
        return service.ChecksumMismatch(message)
    if isinstance(error, driver.NotSupported):
        return service.NotImplementedByProvider(message)
    if isinstance(error, driver.RateLimited | driver.CapacityError | driver.QuotaExceeded):
        return service.Unavailable(f"the provider cannot take it now: {message}")
    return service.BadGateway(message)
