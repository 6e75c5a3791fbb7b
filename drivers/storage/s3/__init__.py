"""``s3``: Amazon S3 and S3-compatible object stores (see ``driver``)."""

from drivers.storage.s3.driver import S3StorageDriver
from drivers.storage.s3.multipart import part_size_at

__all__ = ["S3StorageDriver", "part_size_at"]
