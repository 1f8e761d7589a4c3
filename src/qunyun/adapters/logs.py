"""Log lines without secrets: platform API URLs carry credentials in their query strings.

httpx logs every request's full URL at INFO, and WeCom's ``gettoken?corpsecret=…`` and
``…?access_token=…`` (Telegram's ``/bot<token>/``) would land in the logs of anyone who runs
with ``-v``. The filter rewrites those values to ``***`` on the HTTP client's loggers; it is
installed when a platform client is made and when the runtime is built (idempotent).
"""

from __future__ import annotations

import logging
import re

SECRET_QUERY = re.compile(
    r"(?i)\b(access_token|corpsecret|secret|token|encodingaeskey|password|key)=([^&\s\"']+)")
BOT_TOKEN = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")
HTTP_LOGGERS = ("httpx", "httpcore")


def redact(text: str) -> str:
    return BOT_TOKEN.sub("/bot***", SECRET_QUERY.sub(r"\1=***", text))


class RedactSecrets(logging.Filter):
    """Formats the record's message once and keeps only the redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install() -> None:
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
