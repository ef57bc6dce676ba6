"""Load for the webhook benchmark: Twilio status callbacks, signed as Twilio signs them, posted
as fast as the server answers for a fixed time. Run as a process of its own:
`python -m ops.bench.webhook_load JOB.json`; prints one JSON line.

JOB.json: {"server", "public_url", "path", "auth_token", "account_sid", "duration",
"concurrency", "items": [[delivery_id, message_sid, to]]}. Requests are built and signed before
the clock starts, so the load generator spends its time on sending.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator


def build(job: dict) -> list[tuple[str, bytes, dict[str, str]]]:
    signer = RequestValidator(job["auth_token"])
    requests = []
    for delivery_id, sid, to in job["items"]:
        query = f"?d={delivery_id}"
        params = {
            "AccountSid": job["account_sid"],
            "ApiVersion": "2010-04-01",
            "From": "+815000000000",
            "To": to,
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": "delivered",
            "SmsStatus": "delivered",
        }
        signed_url = job["public_url"] + job["path"] + query
        headers = {
            "X-Twilio-Signature": signer.compute_signature(signed_url, params),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        requests.append((job["server"] + job["path"] + query, urlencode(params).encode(), headers))
    return requests


async def run(job: dict) -> dict:
    requests = build(job)
    statuses: Counter[int] = Counter()
    deadline = 0.0
    position = 0

    async def loop(session: aiohttp.ClientSession) -> None:
        nonlocal position
        while time.perf_counter() < deadline:
            url, body, headers = requests[position % len(requests)]
            position += 1
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] += 1
            except aiohttp.ClientError:
                statuses[0] += 1

    connector = aiohttp.TCPConnector(limit=job["concurrency"])
    async with aiohttp.ClientSession(connector=connector) as session:
        started, cpu0 = time.perf_counter(), time.process_time()
        deadline = started + job["duration"]
        await asyncio.gather(*(loop(session) for _ in range(job["concurrency"])))
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    return {
        "ok": ok,
        "statuses": {str(k): v for k, v in statuses.items()},
        "seconds": seconds,
        "per_s": ok / seconds,
        "cpu_s": cpu,  # this process's CPU while the clock ran (not the signing before)
    }


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(asyncio.run(run(job))), flush=True)


if __name__ == "__main__":
    main()
