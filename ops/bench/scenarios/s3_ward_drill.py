"""s3 the ward drill at Twilio's default limits vs the theoretical minimum.

It runs on the sample directory (ops/sample), not the synthetic one: run.py runs it first."""

from __future__ import annotations

import time

from ops.bench.harness import Bench, row
from ops.bench.stack import ROOT, TWILIO_DEFAULTS


def run(bench: Bench) -> dict:
    from relay.db import transaction
    from relay.delivery.runtime import burst_for
    from relay.directory.csv_format import parse_directory
    from relay.directory.store import apply_directory

    s = bench.stack
    s.truncate()
    sample = ROOT / "ops" / "sample" / "kanazawa-directory.csv"
    with transaction(s.db_url) as session:
        apply_directory(session, parse_directory(sample.read_bytes()), actor="bench")
    s.start_workers(TWILIO_DEFAULTS)
    # An organization with a mobile: the warm-up goes by SMS.
    bench.warm_up(
        bench.sql(
            "SELECT o.code FROM organizations o JOIN contacts c ON c.organization_id = o.id "
            "JOIN contact_paths p ON p.contact_id = c.id WHERE p.kind = 'mobile' "
            "AND p.line_type = 'mobile' ORDER BY o.code LIMIT 1"
        )[0][0]
    )
    # The warm-up spent tokens: let every bucket fill up again before the clock starts.
    time.sleep(1.0)
    before = s.sim_count()
    wall0 = time.time()
    audience = bench.size["s3_audience"]
    alert_id = bench.issue(
        audience,
        template="drill",
        status="Exercise",
        channels=("sms", "voice", "email"),
        mode="cascade",
    )
    queued = bench.sql(
        "SELECT channel, count(*), sum(segments) FROM deliveries WHERE alert_id = :a "
        "AND state = 'queued' GROUP BY channel",
        a=alert_id,
    )
    bench.wait_sent(alert_id, 900)
    reqs = s.sim_requests(before)
    by_kind = {"sms": "sms", "call": "voice", "email": "email"}
    weights: dict[str, int] = {}
    last: dict[str, float] = {}
    for r in reqs:
        ch = by_kind[r["kind"]]
        weights[ch] = weights.get(ch, 0) + (r["segments"] if ch == "sms" else 1)
        last[ch] = max(last.get(ch, 0.0), r["wall"] - wall0)
    theory = {
        ch: max(0.0, (w - burst_for(TWILIO_DEFAULTS[ch])) / TWILIO_DEFAULTS[ch])
        for ch, w in weights.items()
    }
    minimum = max(theory.values())
    took = max(last.values())
    return {
        "title": f"3. Ward drill at Twilio's default limits (SMS 10 seg/s, voice 1/s, "
        f"email 14/s), audience `{audience}`, cascade",
        "rows": [
            row("issue → every first attempt at the provider", round(took, 1), "", None, "s"),
            row("theoretical minimum for those limits", round(minimum, 1), "", None, "s"),
            row("ratio", round(took / minimum, 3), "≤ 1.05", took / minimum <= 1.05),
        ],
        "details": {
            "first_attempts": {ch: [int(n), int(seg or 0)] for ch, n, seg in queued},
            "weights_at_provider": weights,
            "per_channel_last_s": {k: round(v, 2) for k, v in last.items()},
            "per_channel_minimum_s": {k: round(v, 2) for k, v in theory.items()},
            "states": bench.states(alert_id),
        },
        "reproduce": f"{bench.command} --only s3",
    }
