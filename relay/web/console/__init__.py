"""The operators' web console (SPEC 5.6), Japanese UI at /console: server-rendered pages
(templates/console/), a little JavaScript only for the live preview and live counts.

`install(app)` adds the routes and the handlers that answer a refused request with a Japanese
page (or 401 JSON for the pages' own JSON endpoints) instead of the API's JSON errors.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from relay.web.console import alerts, desk, drafts, signin
from relay.web.console.render import ConsoleError, NotSignedIn, error_page, redirect
from relay.web.console.throttle import SignInThrottle

PREFIX = "/console"


def install(app: FastAPI) -> None:
    app.state.console_throttle = SignInThrottle()
    for part in (signin.router, alerts.router, drafts.router, desk.router):
        app.include_router(part, prefix=PREFIX, include_in_schema=False)

    @app.exception_handler(ConsoleError)
    async def console_error(request: Request, exc: ConsoleError) -> Response:
        return error_page(request, exc, getattr(request.state, "console_user", None))

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if request.url.path.endswith(".json"):
            return JSONResponse({"error": "サインインしてください"}, status_code=401)
        target = request.url.path if request.method == "GET" else "/console"
        return redirect(request, f"/console/login?next={quote(target)}")
