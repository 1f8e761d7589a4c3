"""The fake WeCom corp's credentials (the ``fake`` server fixture is in tests/conftest.py)."""

from __future__ import annotations

CORP = "wwfake0000000001"
SECRET = "fake-secret"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
