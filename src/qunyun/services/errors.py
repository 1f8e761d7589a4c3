"""Errors services raise; the web maps them to 4xx and the CLI to exit code 2.

Their messages are catalog templates with values (``NotFound("tag {ref!r} not found",
ref=ref)``), so a page or a terminal shows them in the team's language while logs and the
API's ``error`` field keep the English sentence."""

from __future__ import annotations

from typing import Any

from qunyun.i18n import Translatable, refusal


class ServiceError(Translatable):
    status_code = 400

    @classmethod
    def wrap(cls, exc: Exception) -> ServiceError:
        """``exc`` (a value error from parsing, say) as this error, keeping its template
        and values so it is still translated."""
        if isinstance(exc, Translatable):
            return cls(exc.template, **exc.values)
        return cls(str(exc))


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

    def __init__(self, message: str, /, *, role: str = "", permission: str = "",
                 **values: Any) -> None:
        super().__init__(message, role=role, permission=permission, **values)
        self.role = role
        self.permission = permission


class TooManyAttempts(ServiceError):
    """Sign-ins refused for a while after repeated failures (the web answers 429 with
    ``Retry-After``)."""

    status_code = 429

    def __init__(self, message: str, retry_after: int, /, **values: Any) -> None:
        super().__init__(message, **values)
        self.retry_after = retry_after


def in_words(exc: Translatable, language: str) -> str:
    """What a service refused, for a person in ``language``: a refusal by role names the role
    and what it may not do (never their codes); anything else is its translated sentence."""
    if isinstance(exc, AccessDenied) and exc.role and exc.permission:
        return refusal(exc.role, exc.permission, language)
    return exc.in_language(language)
