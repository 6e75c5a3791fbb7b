"""Amazon EC2 (and EC2-compatible clouds) over the EC2 Query API."""

from drivers.compute.ec2.driver import EC2NodeDriver

__all__ = ["EC2NodeDriver"]
