"""The JSON API under /api/v1 (OpenAPI at /api/v1/openapi.json), one module per feature
named as the feature is everywhere else (``api/segments.py`` beside ``routes/segments.py``,
``services/segments.py`` and ``cli/crm.py``'s ``segments`` commands). Calls services only."""

from __future__ import annotations

from fastapi import APIRouter

from qunyun.web.routes.api import (
    activities,
    automation,
    broadcasts,
    entry,
    exports,
    fission,
    groups,
    ingest,
    join_codes,
    leads,
    members,
    outbox,
    plans,
    playbooks,
    reports,
    scripts,
    segments,
    tags,
    tasks,
    telegram,
    timeline,
    users,
    wecom,
)

#: In the order they were registered before the split: a module's fixed paths come before
#: another's ``{id}`` paths where both could match.
ROUTERS: tuple[APIRouter, ...] = tuple(m.router for m in (
    users, reports, groups, members, tasks, outbox, ingest, tags, segments, leads, automation,
    scripts, playbooks, timeline, broadcasts, activities, wecom, join_codes, telegram,
    entry, fission, plans, exports))
