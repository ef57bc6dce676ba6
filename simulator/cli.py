"""Command line of the standalone simulator (also behind `relay simulator`)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .behaviour import Population
from .server import CarrierSimulator

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Twilio-compatible REST API and SMTP server on loopback, with simulated "
        "recipients. Prints one JSON line with its addresses once listening; stops on "
        "SIGINT/SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="Twilio API port (0: any free)")
    parser.add_argument("--smtp-port", type=int, default=0, help="SMTP port (0: any free)")
    parser.add_argument(
        "--account-sid",
        default=os.environ.get("TWILIO_ACCOUNT_SID", DEFAULT_ACCOUNT_SID),
        help="account SID clients must use (default: $TWILIO_ACCOUNT_SID or AC000...)",
    )
    parser.add_argument(
        "--auth-token",
        default=os.environ.get("TWILIO_AUTH_TOKEN"),
        help="auth token clients must use and callbacks are signed with "
        "(default: $TWILIO_AUTH_TOKEN; prefer it, a flag shows in `ps`)",
    )
    parser.add_argument("--sms-webhook", required=True, help="URL inbound SMS are posted to")
    parser.add_argument("--link-base", help="prefix of acknowledgement links to tap")
    parser.add_argument("--speed", type=float, help="time compression factor (default 1)")
    parser.add_argument("--seed", type=int, help="seed for everything random")
    parser.add_argument("--behaviours", type=Path, help="population JSON file")
    parser.add_argument("--smtp-username")
    parser.add_argument("--smtp-password", default=os.environ.get("SMTP_PASSWORD"))
    parser.add_argument("--smtp-starttls", action="store_true", help="offer STARTTLS")
    parser.add_argument(
        "--smtp-ca-out", type=Path, help="write the STARTTLS CA certificate (PEM) here"
    )
    parser.add_argument("--spec", type=Path, help="Twilio OpenAPI JSON to validate against")
    parser.add_argument("--validate", choices=["all", "sample", "full", "off"], default="all")
    parser.add_argument("--validate-every", type=int, default=10)
    parser.add_argument(
        "--no-callbacks", action="store_true", help="fast mode: accept, schedule nothing"
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    if not args.auth_token:
        print("error: --auth-token or $TWILIO_AUTH_TOKEN is required", file=sys.stderr)
        return 2
    population = Population.load(args.behaviours) if args.behaviours else Population()
    if args.seed is not None:
        population = dataclasses.replace(population, seed=args.seed)
    sim = CarrierSimulator(
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        sms_webhook_url=args.sms_webhook,
        population=population,
        speed=args.speed,
        smtp_username=args.smtp_username,
        smtp_password=args.smtp_password,
        smtp_starttls=args.smtp_starttls,
        spec_path=args.spec,
        host=args.host,
        port=args.port,
        smtp_port=args.smtp_port,
        link_base=args.link_base,
        validate=args.validate,
        validate_every=args.validate_every,
        callbacks=not args.no_callbacks,
    )
    asyncio.run(_serve(sim, args.smtp_ca_out))
    return 0


async def _serve(sim: CarrierSimulator, ca_out: Path | None) -> None:
    await sim.start()
    try:
        ca_file = None
        if sim.smtp_ca_pem is not None:
            if ca_out is None:
                handle, name = tempfile.mkstemp(prefix="carrier-sim-ca-", suffix=".pem")
                os.close(handle)
                ca_out = Path(name)
            ca_out.write_bytes(sim.smtp_ca_pem)
            ca_file = str(ca_out)
        ready = {
            "api_url": sim.api_url,
            "smtp_host": sim.host,
            "smtp_port": sim.smtp_port,
            "smtp_ca_file": ca_file,
            "account_sid": sim.account_sid,
            "speed": sim.speed,
            "spec_validation": sim.spec_loaded,
        }
        print(json.dumps(ready), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await sim.stop()
