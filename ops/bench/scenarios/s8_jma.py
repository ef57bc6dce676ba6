"""s8 a JMA bulletin that meets an `auto` rule → the first provider request of its alert.

The document reaches the relay as the feed poller hands it over (relay.jma.ingest in this
process, then the outbox published, as `relay scheduler` does); the clock runs from there to
the simulator's first request for the alert. The rule sends to one organization, so the figure
is the path's latency, not a fan-out's. Each sample is a new earthquake (its own EventID);
the aftershock window is set to 0 so that every sample acts — that one setting differs from
production, and it only decides whether a bulletin acts, not how fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ops.bench import directory
from ops.bench.harness import Bench, pct, row
from ops.bench.stack import FAST, wait_until
from simulator.jma import vxse53

RULES = """rules:
  - name: bench-quake
    kinds: [intensity]
    area_codes: ["1410800"]
    min_intensity: 5弱
    template: earthquake
    variables: {{intensity: "{{intensity}}", area: 金沢区全域}}
    audience: org:{org}
    channels: [sms]
    mode: blast
    action: auto
"""


def run(bench: Bench) -> dict:
    from relay.db import transaction
    from relay.delivery.runtime import get_runtime
    from relay.jma.ingest import ingest_document

    s = bench.stack
    s.start_workers(FAST)
    bench.warm_up()
    rules = Path(s.workdir) / "bench-rules.yaml"
    rules.write_text(RULES.format(org="bench-000001"), encoding="utf-8")
    settings = replace(bench.settings(), triggers_path=rules, jma_aftershock_window=timedelta(0))
    number = directory.mobile(1)
    samples: list[float] = []
    ingest_s: list[float] = []
    start = datetime.now(UTC)
    for i in range(bench.size["s8"]):
        # A second apart in JMA's report time (its resolution), so no sample is an aftershock
        # reported at the same instant as the one before.
        at = start + timedelta(seconds=i)
        document = vxse53(f"bench{time.time_ns()}", 1, "5-", at=at)
        since = s.sim_count()
        t0 = time.time()
        with transaction(settings.database_url) as session:
            done = ingest_document(session, settings, document, f"bench:{i}", at)
        get_runtime().publish_outbox()
        ingest_s.append(time.time() - t0)
        assert done.alert_id is not None, done.outcome
        arrived = _arrival(s, since, number)
        samples.append(float(wait_until(arrived, 30, f"JMA alert {i}", 0.002)) - t0)
    p50, worst = pct(samples, 0.5), max(samples)
    return {
        "title": "8. JMA: a 震度5弱 bulletin for 金沢区 (auto rule) → first provider request",
        "rows": [
            row(f"p50 ({len(samples)} bulletins)", round(p50 * 1000), "", None, "ms"),
            row("worst", round(worst * 1000), "≤ 2,000", worst <= 2.0, "ms"),
        ],
        "details": {
            "ms": [round(x * 1000, 1) for x in samples],
            "ingest_and_publish_ms": [round(x * 1000, 1) for x in ingest_s],
        },
        "reproduce": f"{bench.command} --only s8",
    }


def _arrival(stack: Any, since: int, number: str) -> Callable[[], float | None]:
    """When the simulator first saw an SMS to `number` after request `since` (None: not yet)."""

    def arrived() -> float | None:
        for r in stack.sim_get(f"/_sim/log?since={since}&kind=sms"):
            if r["to"] == number:
                return float(r["wall"])
        return None

    return arrived
