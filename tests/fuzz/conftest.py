from tests.access.conftest import two_labs  # noqa: F401
