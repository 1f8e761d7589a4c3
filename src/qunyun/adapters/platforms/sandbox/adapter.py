"""Sandbox adapter: full capabilities by default, or a WeCom-like profile for rehearsals."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from qunyun.adapters.platforms.base import (
    Delivery,
    JoinCodeLimits,
    JoinCodeMade,
    JoinCodeSpec,
    ParseResult,
    PlatformAdapter,
    Receipt,
    TransientSendError,
)
from qunyun.adapters.platforms.sandbox import parse as sandbox_parse
from qunyun.adapters.platforms.sandbox.send import SandboxStore
from qunyun.domain.actions import Capability

PROFILES: dict[str, frozenset[Capability]] = {
    "full": frozenset(Capability),
    # What WeCom customer groups allow through the official API: no kicking, no bot posts in
    # groups, no unconfirmed broadcasts (see shared/protocols/WECOM_AND_EXPORTS.md).
    "wecom": frozenset({Capability.SEND_PRIVATE, Capability.IDEMPOTENT_SEND, Capability.SEND_IMAGE,
                        Capability.SEND_LINK, Capability.SEND_MINIPROGRAM,
                        Capability.CREATE_JOIN_CODE}),
}
JOIN_CODE_LIMITS = {"full": JoinCodeLimits(max_groups=5, capacities=(100, 200, 500, 2000)),
                    "wecom": JoinCodeLimits(max_groups=5, capacities=(100, 200, 500))}
JOIN_LINK = "https://sandbox.qunyun.invalid/join/{code_id}"


class SandboxAdapter(PlatformAdapter):
    name: ClassVar[str] = "sandbox"

    def __init__(
        self,
        store: SandboxStore,
        *,
        profile: str = "full",
        fail_rate: float = 0.0,
        latency_seconds: float = 0.0,
        seed: int = 0,
        capabilities: frozenset[Capability] | None = None,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown sandbox profile {profile!r}; known: {sorted(PROFILES)}")
        self.store = store
        self.profile = profile
        # a rehearsal stands in for another platform: it declares that platform's
        self.capabilities = PROFILES[profile] if capabilities is None else capabilities
        self.join_code_limits = JOIN_CODE_LIMITS[profile]
        # the codes made, by code id: what each points at (a rehearsal scans them)
        self.join_codes: dict[str, JoinCodeSpec] = {}
        self.fail_rate = fail_rate
        self.latency_seconds = latency_seconds
        self._random = random.Random(seed)

    def parse(self, raw: Mapping[str, Any]) -> ParseResult:
        return sandbox_parse.parse(raw)

    def send(self, delivery: Delivery) -> Receipt:
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        if self.fail_rate and self._random.random() < self.fail_rate:
            raise TransientSendError("sandbox: simulated transient failure", retry_after=0.0)
        payload = delivery.action.to_payload()
        payload["mentions"] = [delivery.member_names.get(i, "") for i in
                               payload.get("mention_member_ids", [])]
        seq, duplicate = self.store.record(
            delivery.idempotency_key, delivery.action.type_name, delivery.chat_external_id,
            payload)
        return Receipt(platform_message_id=f"sbx-{seq}", duplicate=duplicate)

    def create_join_code(self, account: str, spec: JoinCodeSpec) -> JoinCodeMade:
        code_id = f"sbx-join-{len(self.join_codes) + 1}-{spec.channel}"
        self.join_codes[code_id] = spec
        return JoinCodeMade(code_id, JOIN_LINK.format(code_id=code_id))

    def update_join_code(self, account: str, code_id: str, spec: JoinCodeSpec) -> JoinCodeMade:
        self.join_codes[code_id] = spec
        return JoinCodeMade(code_id, JOIN_LINK.format(code_id=code_id))

    def delete_join_code(self, account: str, code_id: str) -> None:
        self.join_codes.pop(code_id, None)

    def close(self) -> None:
        self.store.close()
