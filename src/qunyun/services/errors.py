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
    status_code = 403
