"""The HTTP app: Twilio webhooks, acknowledgement links, health. (API and console: relay.web.*)"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from relay.config import Settings, load_settings
from relay.web import links, twilio_webhooks


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    app = FastAPI(title="Kanazawa emergency information relay", version="0.1.0")
    app.state.settings = settings
    app.include_router(twilio_webhooks.router)
    app.include_router(links.router)

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    return app
