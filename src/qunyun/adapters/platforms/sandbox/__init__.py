"""The sandbox: a local simulated platform used by demos and tests."""

from qunyun.adapters.platforms.sandbox.adapter import PROFILES, SandboxAdapter

__all__ = ["PROFILES", "SandboxAdapter"]
