"""Where the time goes: the product's planning and sending paths under pyinstrument, in one
process against the same PostgreSQL, Redis and simulator as the benchmarks.

    python -m ops.bench.profile [--recipients 5000] [--out var/bench/profiles]

Writes plan.txt/plan.html (issue_alert for N recipients) and send.txt/send.html
(relay.delivery.sending.send_batch over those deliveries, batch by batch as the send task does).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pyinstrument import Profiler

from ops.bench import directory
from ops.bench.harness import EARTHQUAKE
from ops.bench.stack import FAST, ROOT, Stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "profiles")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    stack = Stack(ROOT / "var" / "bench" / "profile")
    stack.fresh_database()
    stack.clear_redis()
    stack.start_simulator()
    try:
        os.environ.update(stack.env(FAST))
        from relay.alerts.issuing import IssueRequest, issue_alert
        from relay.db import transaction
        from relay.delivery.dispatch import BATCH_SIZE
        from relay.delivery.runtime import get_runtime, reset_runtime
        from relay.delivery.sending import queued_ids, send_batch
        from relay.directory.audience import parse_audience

        reset_runtime()
        directory.load(stack.db_url, args.recipients)
        runtime = get_runtime()
        request = IssueRequest(
            template="earthquake",
            audience=parse_audience("all"),
            variables=EARTHQUAKE,
            channels=("sms",),
            mode="blast",
        )
        with Profiler() as plan, transaction(stack.db_url) as session:
            alert_id = issue_alert(session, runtime.settings, request).id
        _save(plan, args.out / "plan")
        with runtime.sessions() as session:
            ids = queued_ids(session, alert_id)["sms"]
        size = BATCH_SIZE["sms"]
        with Profiler(async_mode="disabled") as send:
            for start in range(0, len(ids), size):
                runtime.run(
                    send_batch(runtime.sessions, runtime.senders, "sms", ids[start : start + size])
                )
        _save(send, args.out / "send")
        p, q = plan.last_session, send.last_session
        print(
            f"profiles in {args.out}: plan {p.duration:.2f}s (CPU {p.cpu_time:.2f}s), "
            f"send {q.duration:.2f}s (CPU {q.cpu_time:.2f}s) for {len(ids)} SMS"
        )
    finally:
        stack.close()


def _save(profiler: Profiler, stem: Path) -> None:
    stem.with_suffix(".txt").write_text(profiler.output_text(unicode=True, show_all=False))
    stem.with_suffix(".html").write_text(profiler.output_html())


if __name__ == "__main__":
    main()
