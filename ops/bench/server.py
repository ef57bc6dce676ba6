"""The relay's HTTP app served exactly as `relay serve` serves it, plus one no-op endpoint.

The no-op is the webhook benchmark's reference: the same process, server and middleware, with
no signature check and no database (POST /bench/noop answers 204). It exists only here.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import Response

from relay.cli.common import settings
from relay.logs import configure as configure_logging
from relay.web.app import create_app
from workers import tasks  # noqa: F401  (as relay serve: registers the outbox publisher)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    cfg = settings()
    configure_logging(cfg.log_format, cfg.log_level)
    app = create_app(cfg)

    @app.post("/bench/noop", include_in_schema=False)
    def noop() -> Response:
        # A plain `def` like the webhook handlers, so both run in the same thread pool.
        return Response(status_code=204)

    # The same call as relay.cli.process_cmd.serve.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
