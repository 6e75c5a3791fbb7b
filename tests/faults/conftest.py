from tests.functional.conftest import service  # noqa: F401  (the in-process service)
