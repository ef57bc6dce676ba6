"""Inspection and control over HTTP, for a simulator running as a separate process.

GET  /_sim/log[?kind=sms&since=N]  records (from index N), as JSON
GET  /_sim/stats                   counts by kind and status, violations, pending jobs
GET  /_sim/violations              requests Twilio would have refused
POST /_sim/behaviours              {"+8190...": {...}, "a@b.jp": {...}, "default": {...}}
POST /_sim/reset                   forget log, messages, calls, violations and fault counters
POST /_sim/wait_idle?timeout=S     answers 200 once nothing is scheduled (504 on timeout)

No authentication: the simulator listens on loopback and is a test peer.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

from aiohttp import web

from .behaviour import Behaviour
from .context import Context


class Control:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_sim/log", self.log),
            web.get("/_sim/stats", self.stats),
            web.get("/_sim/violations", self.violations),
            web.post("/_sim/behaviours", self.behaviours),
            web.post("/_sim/reset", self.reset),
            web.post("/_sim/wait_idle", self.wait_idle),
        ]

    async def log(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        kinds = set(request.query.getall("kind", []))
        records = list(self.ctx.log)[since:]
        return web.json_response(
            [r.to_dict() for r in records if not kinds or r.kind in kinds],
            dumps=_dumps,
        )

    async def stats(self, request: web.Request) -> web.Response:
        records = list(self.ctx.log)
        by_status = Counter(f"{r.kind}:{r.status}" for r in records)
        return web.json_response(
            {
                "records": len(records),
                "by_kind": self.ctx.log.count_by_kind(),
                "by_kind_status": dict(by_status),
                "messages": len(self.ctx.messages),
                "calls": len(self.ctx.calls),
                "violations": len(self.ctx.violations),
                "pending": self.ctx.scheduler.pending,
                "errors": list(self.ctx.scheduler.errors),
            }
        )

    async def violations(self, request: web.Request) -> web.Response:
        return web.json_response([dataclasses.asdict(v) for v in self.ctx.violations])

    async def behaviours(self, request: web.Request) -> web.Response:
        data = await request.json()
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="expected a JSON object of behaviours")
        try:
            parsed = {key: Behaviour.from_dict(value) for key, value in data.items()}
        except (TypeError, ValueError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        population = self.ctx.population
        for key, behaviour in parsed.items():
            if key == "default":
                population.default = behaviour
            else:
                population.set(key, behaviour)
        return web.json_response({"updated": len(parsed)})

    async def reset(self, request: web.Request) -> web.Response:
        self.ctx.reset()
        return web.json_response({"reset": True})

    async def wait_idle(self, request: web.Request) -> web.Response:
        timeout = float(request.query.get("timeout", "30"))
        try:
            await self.ctx.scheduler.wait_idle(timeout)
        except TimeoutError:
            return web.json_response({"idle": False}, status=504)
        return web.json_response({"idle": True})


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
