"""Security headers on every response of the HTTP app.

- Every response: `X-Content-Type-Options: nosniff` (a report or a CSV is never run as a
  script) and `Referrer-Policy: no-referrer` (an acknowledgement link's token never leaves in a
  Referer header, whatever the page links to).
- HTML (console, acknowledgement pages, drill reports): a Content-Security-Policy that runs
  only the page's own scripts, marked with a nonce fresh for each response (no 'unsafe-inline'
  for scripts: injected markup cannot run), loads nothing from another origin, posts forms only
  to this origin, and may not be framed (`frame-ancestors 'none'`, and `X-Frame-Options: DENY`
  for older browsers). Styles may be inline: the pages' CSS is in their <style> elements and
  attributes, and a style cannot run code.

The nonce is put in the request's state (`csp_nonce`) for the page renderers.
"""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]


def policy(nonce: str) -> str:
    return (
        "default-src 'self'; "
        f"script-src 'nonce-{nonce}'; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "object-src 'none'; "
        "base-uri 'none'; "
        "form-action 'self'; "
        "frame-ancestors 'none'"
    )


def nonce_of(state: Any) -> str:
    """This request's nonce, for `<script nonce="…">` in a page."""
    return str(getattr(state, "csp_nonce", ""))


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        state["csp_nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OURS]
                headers += ALWAYS
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    headers += [
                        (b"content-security-policy", policy(nonce).encode()),
                        (b"x-frame-options", b"DENY"),
                    ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


_OURS = {b"x-content-type-options", b"referrer-policy", b"content-security-policy",
         b"x-frame-options"}  # fmt: skip
