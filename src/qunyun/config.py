"""Settings read from the environment (prefix ``QUNYUN_``).

Built once in :mod:`qunyun.bootstrap`; nothing here runs at import time so tests and the CLI
can each build their own settings.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class Settings(BaseSettings):
    """Everything an operator may configure; defaults give the laptop setup (SQLite, no Redis)."""

    model_config = SettingsConfigDict(env_prefix="QUNYUN_", extra="ignore")

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    redis_url: str = ""
    secret_key: str = ""
    timezone: str = "Asia/Shanghai"
    language: str = "zh-CN"
    # Outbox delivery.
    outbox_max_attempts: int = Field(default=6, ge=1)
    outbox_backoff_base_seconds: float = Field(default=2.0, gt=0)
    outbox_backoff_cap_seconds: float = Field(default=600.0, gt=0)
    outbox_lease_seconds: float = Field(default=60.0, gt=0)
    outbox_batch_size: int = Field(default=50, ge=1)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    # Rate limits: messages per second per platform and per minute per group.
    rate_platform_per_second: float = Field(default=50.0, gt=0)
    rate_group_per_minute: float = Field(default=20.0, gt=0)
    # Sandbox platform: where the simulated platform keeps what it received, and which
    # capability profile it pretends to have ("full" or "wecom").
    sandbox_store: str = ""
    sandbox_profile: str = "full"
    sandbox_latency_seconds: float = Field(default=0.0, ge=0)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # chat exports uploaded through the API or the dashboard (years of a group: tens of MB)
    max_import_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    # WeCom: where the server API lives (a fake or staging server in tests), how far a
    # callback's timestamp may be from now, how often the worker polls group sends
    wecom_api_base: str = "https://qyapi.weixin.qq.com/cgi-bin"
    # the Bot API server; methods are {base}/bot{token}/{method} (tests use the fake)
    telegram_api_base: str = "https://api.telegram.org"
    telegram_poll_seconds: float = Field(default=2.0, gt=0)
    wecom_callback_max_age_seconds: float = Field(default=600.0, gt=0)
    wecom_poll_seconds: float = Field(default=30.0, gt=0)
    # Analytics mirror (a DuckDB copy for the cohort report, issue 7): off by default; when
    # on, the worker refreshes it this often and cohort reports read it, saying as of when.
    # Deployment behind HTTPS (docs/security.md): the address staff and platforms reach us
    # at (callback URLs are built from it, never from a request's Host header), cookies
    # only over HTTPS, and a token Prometheus sends to read /metrics.
    public_url: str = ""
    secure_cookies: bool = False
    metrics_token: str = ""
    analytics_mirror: bool = False
    analytics_mirror_path: str = ""
    analytics_mirror_minutes: float = Field(default=60.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone, so a typo fails at start-up
        return value

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in ("zh-CN", "en"):
            raise ValueError("language must be zh-CN or en")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("public_url must start with https:// (or http:// for testing)")
        return value

    @property
    def https(self) -> bool:
        """Cookies marked Secure and HSTS sent: asked for, or implied by an https address."""
        return self.secure_cookies or self.public_url.startswith("https://")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def pictures_dir(self) -> Path:
        """Posters, their backgrounds and uploaded screenshots (under the data folder)."""
        return Path(self.data_dir) / "posters"

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``<data_dir>/qunyun.db`` (SQLite)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qunyun.db').as_posix()}"

    def resolved_mirror_path(self) -> Path:
        return Path(self.analytics_mirror_path or self.data_dir / "analytics.duckdb")

    def resolved_sandbox_store(self) -> str:
        return self.sandbox_store or str(self.data_dir / "sandbox.db")
