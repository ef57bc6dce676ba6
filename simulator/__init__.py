"""Carrier simulator: Twilio's REST API and an SMTP server on loopback, plus the recipients.

Used in-process by tests, the demo and the benchmarks, and as a process of its own
(`python -m simulator --help`). Imports nothing from `relay` or `workers`.

    from simulator import Behaviour, CarrierSimulator, Population, SimulatorThread

    population = Population(
        behaviours={
            "+819011112222": Behaviour(sms_reply="1", sms_reply_delay=20),
            "+819033334444": Behaviour(call_outcome="machine"),
            "+81452223333": Behaviour(line="landline", digits="1"),
            "leader@example.jp": Behaviour(email_link_answer="1"),
        },
        seed=7,
        speed=60.0,  # simulated seconds per real second
    )
    sim = CarrierSimulator(
        account_sid="AC" + 32 * "0", auth_token="secret",
        sms_webhook_url="http://127.0.0.1:8000/webhooks/twilio/sms",
        population=population,
        speed=None,                # None: the population's; a number overrides it
        smtp_username=None, smtp_password=None, smtp_starttls=False,
        spec_path=None,            # None: $TWILIO_OPENAPI_SPEC or ../shared/twilio/...
        host="127.0.0.1", port=0,  # 0: a free port
        # keyword-only:
        smtp_port=0,
        link_base=None,            # None: scheme://host:port of sms_webhook_url + "/a/"
        service_number="+815000000000",  # From when only MessagingServiceSid is given
        validate="all",            # "all" | "sample" (every validate_every-th) | "full" | "off"
        validate_every=10,
        callbacks=True,            # False: fast mode, accept and schedule nothing
    )
    await sim.start(); sim.api_url; sim.smtp_port; await sim.stop()   # or: async with sim:
    await sim.wait_idle(timeout)   # until no callback, reply, tap or call is pending

    with SimulatorThread(sim) as s:   # the loop in a background thread; blocking start/stop
        s.api_url; s.smtp_port; s.wait_idle(10); s.run(coroutine)

What tests look at: `sim.log` (a list of `LogRecord`, with `requests_to(number)`,
`sms_requests()`, `callbacks_for(sid)`, `of_kind(...)`, `count_by_kind()`,
`window_max(kind, seconds=1.0, weight="segments")`), `sim.violations` (requests Twilio would
refuse; assert it stays `[]`), `sim.errors` (the simulator's own failures), `sim.messages`,
`sim.calls`, `sim.smtp_ca_pem`, `sim.smtp_client_context()`, `sim.set_behaviour(key, b)`,
`sim.reset()`.

Validation: every API request is checked against Twilio's OpenAPI spec (openapi-core's
schema validators, compiled once per operation: ~0.03 ms a request) and Twilio's run-time
rules (E.164 To, From or MessagingServiceSid, Body; Url or Twiml). `validate="full"` runs
openapi-core's complete request validator instead (~5 ms a request); "sample" checks every
`validate_every`-th request. Without the spec file, only the run-time rules are checked.

Time: behaviour delays are simulated seconds, divided by the speed factor. API faults
(500/429/timeout/reset) are real time, since they race the client's own timeouts.
"""

from __future__ import annotations

from .behaviour import Behaviour, FaultRates, Population
from .cli import main
from .context import Violation
from .log import LogRecord, SimLog
from .segments import count_segments
from .server import CarrierSimulator, SimulatorThread

__all__ = [
    "Behaviour",
    "CarrierSimulator",
    "FaultRates",
    "LogRecord",
    "Population",
    "SimLog",
    "SimulatorThread",
    "Violation",
    "count_segments",
    "main",
]
