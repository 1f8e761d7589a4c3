"""Request size limits, as ASGI middleware (used by the app and by the callback fast path)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, whether or not they declare a length.

    ``larger`` gives exact paths their own limit (the chat-export upload takes files far
    beyond what any form or JSON body needs); ``larger_under`` paths under a prefix (the
    fission pages, where posters' backgrounds and phones' screenshots are uploaded)."""

    def __init__(self, app: ASGIApp, max_bytes: int,
                 larger: Mapping[str, int] | None = None,
                 larger_under: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})
        self.larger_under = dict(larger_under or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.larger.get(path) or next(
            (n for prefix, n in self.larger_under.items() if path.startswith(prefix)),
            self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send)
            return
        seen = 0
        started = refused = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out; whatever the app answers to the cut body is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def limited() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # answer 413 now and tell the app the client went away: frameworks that
                    # parse the body catch any exception raised here and answer 400
                    if not started:
                        await self._refuse(send)
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if not refused:
                raise
            # the app tripped over the body it never got whole: it has had its answer

    async def _refuse(self, send: Send) -> None:
        body = b'{"error": "request body too large"}'
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
