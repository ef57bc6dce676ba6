"""The HTTP app: Twilio webhooks, acknowledgement links, health. (API and console: relay.web.*)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from relay.config import Settings, load_settings
from relay.db import session_factory
from relay.jma.feed import stale_feeds
from relay.web import api, console, drafts_api, links, metrics, status_ingest, twilio_webhooks
from relay.web.body_limit import BodyLimit
from relay.web.headers import SecurityHeaders


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    # No /docs or /redoc: FastAPI's pages load their JavaScript from a CDN, which would run on
    # the console's origin. The description itself stays at /openapi.json.
    app = FastAPI(
        title="Kanazawa emergency information relay",
        version="0.1.0",
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.started_at = datetime.now(UTC)  # a JMA feed never read is stale after a while
    app.state.link_throttle = links.link_throttle()
    app.include_router(twilio_webhooks.router)
    app.include_router(links.router)
    app.include_router(api.router)
    app.include_router(drafts_api.router)  # prepared alerts (JMA bulletins, issue 17)
    app.include_router(metrics.router)
    console.install(app)  # the operators' web console, /console
    _json_errors(app)

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        """The process is up."""
        return "ok"

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Ready to take traffic: the database answers. 503 with the reason otherwise.
        With JMA feeds configured, `jma_feeds` says "ok" or "stale" (with `jma_stale`, which
        and since when) but stays 200: alerts can still be issued by hand, so a stale feed is
        for /metrics and the RelayJmaFeedStale alert, not for taking the relay out of service."""
        body: dict[str, object] = {"ready": True, "database": "ok"}
        try:
            with session_factory(settings.database_url)() as session:
                session.execute(text("SELECT 1"))
                if settings.jma_feeds:
                    now = datetime.now(UTC)
                    stale = stale_feeds(session, settings, now, app.state.started_at)
                    body["jma_feeds"] = "stale" if stale else "ok"
                    if stale:
                        body["jma_stale"] = [
                            {
                                "feed": f.url,
                                "last_ok": f.ok_at.isoformat() if f.ok_at else None,
                                "failures": f.failures,
                                "error": f.error,
                            }
                            for f in stale
                        ]
        except Exception as exc:
            return JSONResponse({"ready": False, "database": type(exc).__name__}, status_code=503)
        return JSONResponse(body)

    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    # Callbacks already handed to the status writer are stored before the process ends.
    status_ingest.stop(app)


def _json_errors(app: FastAPI) -> None:
    """Errors are JSON with a message; bad input is 4xx, never a 500 with a traceback."""

    # Bodies over the limit are a 413, declared or streamed in chunks (relay/web/body_limit.py).
    app.add_middleware(BodyLimit, max_bytes=api.MAX_BODY)
    app.add_middleware(SecurityHeaders)  # outermost: error responses get the headers too

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith("/api/"):
            return PlainTextResponse(str(exc.detail), status_code=exc.status_code)
        detail = exc.detail if isinstance(exc.detail, dict) else {"message": exc.detail}
        return JSONResponse(
            {"error": detail.get("message", ""), **detail},
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())),
                "reason": "unknown field" if e.get("type") == "extra_forbidden" else e.get("msg"),
            }
            for e in exc.errors()
        ]
        unknown = [str(e["loc"][-1]) for e in exc.errors() if e.get("type") == "extra_forbidden"]
        message = "invalid request"
        if unknown:
            message += ": unknown field " + ", ".join(unknown)
        if not request.url.path.startswith("/api/"):  # e.g. /console/alerts/99999999999999999999
            fields = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
            return PlainTextResponse(f"{message}: {fields}", status_code=422)
        return JSONResponse({"error": message, "details": errors}, status_code=422)
