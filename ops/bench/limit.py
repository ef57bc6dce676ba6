"""The limit on this machine: the same SMS requests sent by one asyncio loop with the relay's own
twilio channel (official async client, our aiohttp HTTP client) to the same simulator, with no
database and no queue. Run as a process of its own: `python -m ops.bench.limit JOB.json`; prints
one JSON line {"sent", "failed", "seconds", "per_s"}.

JOB.json: {"api_url", "account_sid", "auth_token", "from", "messages": [[to, body, callback]]}
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from channels.base import SmsMessage
from channels.twilio_http import RelayTwilioHttpClient
from channels.twilio_sms import TwilioSms

# As many requests in flight as the relay's send chunk
# (relay.delivery.sending.chunk_size at most 100)
# and the HTTP pool's connections (RelayTwilioHttpClient limit=100).
CONCURRENCY = 100


async def run(job: dict) -> dict:
    sms = TwilioSms(
        job["account_sid"],
        job["auth_token"],
        from_number=job["from"],
        http_client=RelayTwilioHttpClient(job["api_url"]),
    )
    messages = [SmsMessage(to, body, cb) for to, body, cb in job["messages"]]
    gate = asyncio.Semaphore(CONCURRENCY)
    failed = 0

    async def one(message: SmsMessage) -> None:
        nonlocal failed
        async with gate:
            try:
                await sms.send_sms(message)
            except Exception:
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(m) for m in messages))
    seconds = time.perf_counter() - started
    await sms.close()
    sent = len(messages) - failed
    return {"sent": sent, "failed": failed, "seconds": seconds, "per_s": sent / seconds}


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(asyncio.run(run(job))), flush=True)


if __name__ == "__main__":
    main()
