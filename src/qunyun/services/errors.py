"""Errors services raise; the web maps them to 4xx and the CLI to exit code 2."""

from __future__ import annotations


class ServiceError(Exception):
    status_code = 400


class InvalidInput(ServiceError):
    status_code = 422


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class AccessDenied(ServiceError):
    """Refused by role; ``role`` and ``permission`` (when known) let a page say it in the
    reader's words instead of showing the codes."""

    status_code = 403

    def __init__(self, message: str, *, role: str = "", permission: str = "") -> None:
        super().__init__(message)
        self.role = role
        self.permission = permission


class TooManyAttempts(ServiceError):
    """Sign-ins refused for a while after repeated failures (the web answers 429 with
    ``Retry-After``)."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
