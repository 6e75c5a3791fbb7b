"""Object storage drivers: one module per provider, on the contract in ``base``."""
