"""The channels' transport rules against throwaway peers on loopback.

What the carrier simulator does not exercise: the URL rewrite under an edge/region, connection
reuse and limits, "did the request leave?" for each kind of network failure, Retry-After as an
HTTP date, sessions across event loops, and the SMTP pool's reconnects. Each test runs its
own peer and client on one event loop (asyncio.run).
"""

from __future__ import annotations

import asyncio
import socket
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from channels.base import ChannelError, EmailMessage, Outcome, SmsMessage, VoiceCall
from channels.email_smtp import SmtpEmail
from channels.twilio_http import RelayTwilioHttpClient
from channels.twilio_sms import TwilioSms
from channels.twilio_voice import TwilioVoice

# The throwaway SMTP peer takes AUTH over plain TCP on loopback, on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

ACCOUNT = "AC" + "0f" * 16
TOKEN = "transport-test-token"
FROM = "+815011112222"
TO = "+819012345678"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Peer:
    """A Twilio stand-in: records requests and the client ports they came from."""

    handler: Handler
    requests: list[tuple[str, str, dict[str, list[str]], dict[str, str]]] = field(
        default_factory=list
    )
    client_ports: set[int] = field(default_factory=set)
    port: int = 0
    runner: web.AppRunner | None = None
    url: str = ""

    async def __aenter__(self) -> Peer:
        async def handle(request: web.Request) -> web.StreamResponse:
            form: dict[str, list[str]] = {}
            for key, value in (await request.post()).items():
                form.setdefault(key, []).append(str(value))
            self.requests.append((request.method, request.path, form, dict(request.headers)))
            peer = request.transport.get_extra_info("peername") if request.transport else None
            if peer:
                self.client_ports.add(peer[1])
            return await self.handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def created(sid: str = "SM" + "a" * 32, segments: str = "2") -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"sid": sid, "status": "queued", "num_segments": segments}, status=201
        )

    return handler


def error(status: int, code: int | None, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = {"message": "refused", "status": status}
        if code is not None:
            body["code"] = code
        return web.json_response(body, status=status, headers=headers)

    return handler


def sms_channel(url: str, **http: Any) -> TwilioSms:
    return TwilioSms(
        ACCOUNT, TOKEN, from_number=FROM, http_client=RelayTwilioHttpClient(url, **http)
    )


async def send(channel: TwilioSms, to: str = TO) -> Any:
    try:
        return await channel.send_sms(
            SmsMessage(to, "【訓練】テスト", "https://relay.example.jp/s")
        )
    finally:
        await channel.close()


# --- Twilio HTTP ------------------------------------------------------------------------------


def test_rewrites_host_under_edge_and_region_and_sends_basic_auth() -> None:
    async def scenario() -> None:
        async with Peer(created()) as peer:
            http = RelayTwilioHttpClient(peer.url + "/twilio")  # a base path is kept too
            sms = TwilioSms(
                ACCOUNT, TOKEN, from_number=FROM, http_client=http, edge="tokyo", region="jp1"
            )
            receipt = await send(sms)
        assert receipt.segments == 2 and receipt.outcome is Outcome.QUEUED
        method, path, form, headers = peer.requests[0]
        assert (method, path) == ("POST", f"/twilio/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
        assert form == {
            "To": [TO],
            "From": [FROM],
            "Body": ["【訓練】テスト"],
            "StatusCallback": ["https://relay.example.jp/s"],
        }
        assert headers["Authorization"].startswith("Basic ")

    asyncio.run(scenario())


def test_no_deprecation_warning_from_aiohttp() -> None:
    async def scenario() -> None:
        async with Peer(created()) as peer:
            await send(sms_channel(peer.url))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(scenario())
    assert [w for w in caught if issubclass(w.category, DeprecationWarning)] == []


def test_one_connection_reused_and_the_limit_holds() -> None:
    async def scenario() -> tuple[int, int]:
        async def slow(request: web.Request) -> web.StreamResponse:
            await asyncio.sleep(0.02)
            return await created()(request)

        async with Peer(slow) as peer:
            sms = sms_channel(peer.url, limit=4)
            for _ in range(10):
                await sms.send_sms(SmsMessage(TO, "x"))
            sequential = len(peer.client_ports)
            peer.client_ports.clear()
            await asyncio.gather(*(sms.send_sms(SmsMessage(TO, "x")) for _ in range(40)))
            await sms.close()
            return sequential, len(peer.client_ports)

    sequential, concurrent = asyncio.run(scenario())
    assert sequential == 1
    assert concurrent <= 4


def test_works_across_event_loops() -> None:
    """One client used from two successive loops (two asyncio.run): a session per loop."""
    port = free_port()
    http = RelayTwilioHttpClient(f"http://127.0.0.1:{port}")

    async def scenario() -> str:
        async with Peer(created(), port=port):
            sms = TwilioSms(ACCOUNT, TOKEN, from_number=FROM, http_client=http)
            receipt = await sms.send_sms(SmsMessage(TO, "x"))
            await http.close()
            return receipt.provider_id

    assert asyncio.run(scenario()) == asyncio.run(scenario())


def test_connection_refused_is_transient_and_not_ambiguous() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(ChannelError) as caught:
        asyncio.run(send(sms_channel(url)))
    assert (caught.value.permanent, caught.value.ambiguous, caught.value.code) == (
        False,
        False,
        "network",
    )


def test_hung_provider_is_ambiguous_after_the_timeout() -> None:
    async def hang(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.Response()

    async def scenario() -> None:
        async with Peer(hang) as peer:
            await send(sms_channel(peer.url, timeout=0.3))

    with pytest.raises(ChannelError) as caught:
        asyncio.run(scenario())
    assert (caught.value.ambiguous, caught.value.code, caught.value.permanent) == (
        True,
        "timeout",
        False,
    )


def test_waiting_for_a_pooled_connection_is_not_ambiguous() -> None:
    """Past the connect timeout while the pool is full, the request never left."""

    async def hang(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.Response()

    async def scenario() -> list[ChannelError]:
        async with Peer(hang) as peer:
            sms = sms_channel(peer.url, limit=1, timeout=1.0, connect_timeout=0.3)
            results = await asyncio.gather(
                sms.send_sms(SmsMessage(TO, "a")),
                sms.send_sms(SmsMessage(TO, "b")),
                return_exceptions=True,
            )
            await sms.close()
        assert all(isinstance(r, ChannelError) for r in results)
        return [r for r in results if isinstance(r, ChannelError)]

    errors = asyncio.run(scenario())
    assert sorted(e.ambiguous for e in errors) == [False, True]


def test_reset_after_the_request_was_read_is_ambiguous() -> None:
    async def reset(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        raise asyncio.CancelledError

    async def scenario() -> None:
        async with Peer(reset) as peer:
            await send(sms_channel(peer.url))

    with pytest.raises(ChannelError) as caught:
        asyncio.run(scenario())
    assert caught.value.ambiguous and not caught.value.permanent


def test_503_with_retry_after_as_an_http_date() -> None:
    async def scenario() -> None:
        later = "Fri, 01 Jan 2100 00:00:00 GMT"
        async with Peer(error(503, 20503, {"Retry-After": later})) as peer:
            await send(sms_channel(peer.url))

    with pytest.raises(ChannelError) as caught:
        asyncio.run(scenario())
    assert not caught.value.permanent
    assert caught.value.retry_after is not None and caught.value.retry_after > 3600


def test_401_is_a_permanent_config_error() -> None:
    async def scenario() -> None:
        async with Peer(error(401, 20003)) as peer:
            await send(sms_channel(peer.url))

    with pytest.raises(ChannelError) as caught:
        asyncio.run(scenario())
    assert (caught.value.permanent, caught.value.code) == (True, "20003")


def test_messaging_service_sender_and_no_callback() -> None:
    async def scenario() -> None:
        async with Peer(created()) as peer:
            sms = TwilioSms(
                ACCOUNT,
                TOKEN,
                messaging_service_sid="MG" + "1" * 32,
                from_number=FROM,  # e.g. configured for voice: the service's pool wins
                http_client=RelayTwilioHttpClient(peer.url),
            )
            await sms.send_sms(SmsMessage(TO, "x"))
            await sms.close()
        form = peer.requests[0][2]
        assert form["MessagingServiceSid"] == ["MG" + "1" * 32]
        assert "From" not in form and "StatusCallback" not in form

    asyncio.run(scenario())
    with pytest.raises(ValueError):
        TwilioSms(ACCOUNT, TOKEN)


def test_call_without_callback_or_machine_detection() -> None:
    async def scenario() -> None:
        async with Peer(created("CA" + "b" * 32)) as peer:
            voice = TwilioVoice(
                ACCOUNT, TOKEN, from_number=FROM, http_client=RelayTwilioHttpClient(peer.url)
            )
            receipt = await voice.place_call(
                VoiceCall(TO, "https://relay.example.jp/v/1", detect_machine=False)
            )
            await voice.close()
        assert receipt.provider == "twilio-voice" and receipt.provider_id.startswith("CA")
        form = peer.requests[0][2]
        assert form["Url"] == ["https://relay.example.jp/v/1"] and form["Method"] == ["POST"]
        assert not {"MachineDetection", "StatusCallback", "StatusCallbackEvent"} & set(form)

    asyncio.run(scenario())


# --- SMTP ------------------------------------------------------------------------------------


class MailPeer:
    """aiosmtpd on this loop: counts connections; can drop idle ones or abort during DATA."""

    def __init__(self, *, password: str = "pw", abort_data: bool = False) -> None:  # noqa: S107
        self.connections = 0
        self.messages: list[bytes] = []
        self.abort_data = abort_data
        self.password = password
        self.sessions: list[SmtpServer] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def handle_DATA(self, server: SmtpServer, session: Session, envelope: Envelope) -> str:
        if self.abort_data:
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
        self.messages.append(envelope.original_content or b"")
        return "250 OK"

    def drop_idle(self) -> None:
        for session in self.sessions:
            if session.transport is not None:
                session.transport.close()

    async def __aenter__(self) -> MailPeer:
        loop = asyncio.get_running_loop()

        def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            ok = isinstance(data, LoginPassword) and data.password.decode() == self.password
            return AuthResult(success=ok, handled=False)

        def factory() -> SmtpServer:
            self.connections += 1
            server = SmtpServer(
                self,
                hostname="127.0.0.1",
                authenticator=auth,
                auth_required=True,
                auth_require_tls=False,
                loop=loop,
            )
            self.sessions.append(server)
            return server

        self.server = await loop.create_server(factory, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.drop_idle()
        self.server.close()


def mailer(port: int, password: str = "pw", **kwargs: Any) -> SmtpEmail:  # noqa: S107
    return SmtpEmail(
        "127.0.0.1",
        port,
        "relay",
        password,
        mail_from="金沢区役所 <relay@city.example.jp>",
        starttls=False,
        **kwargs,
    )


MAIL = EmailMessage("taro@example.jp", "【訓練】震度５強", "本文\nhttps://relay.example.jp/a/x")


def test_smtp_reuses_logged_in_connections_and_reconnects_when_dropped() -> None:
    async def scenario() -> None:
        async with MailPeer() as peer:
            channel = mailer(peer.port, pool_size=2)
            for _ in range(5):
                await channel.send_email(MAIL)
            assert peer.connections == 1
            await asyncio.gather(*(channel.send_email(MAIL) for _ in range(6)))
            assert peer.connections == 2  # the pool size, not one per message
            peer.drop_idle()  # the server hangs up on idle sessions
            await asyncio.sleep(0.05)
            receipt = await channel.send_email(MAIL)
            assert receipt.outcome is Outcome.SENT
            await channel.close()
            assert len(peer.messages) == 12
            parsed = message_from_bytes(peer.messages[-1], policy=policy.default)
            assert parsed["Message-ID"] == receipt.provider_id
            assert parsed["Subject"] == "【訓練】震度５強"
            assert parsed["From"].addresses[0].display_name == "金沢区役所"
            assert parsed["Auto-Submitted"] == "auto-generated"

    asyncio.run(scenario())


def test_smtp_disconnect_during_data_is_ambiguous() -> None:
    async def scenario() -> None:
        async with MailPeer(abort_data=True) as peer:
            channel = mailer(peer.port)
            try:
                await channel.send_email(MAIL)
            finally:
                await channel.close()

    with pytest.raises(ChannelError) as caught:
        asyncio.run(scenario())
    assert (caught.value.ambiguous, caught.value.permanent) == (True, False)


def test_smtp_connect_refused_is_transient() -> None:
    async def scenario() -> None:
        await mailer(free_port()).send_email(MAIL)

    with pytest.raises(ChannelError) as caught:
        asyncio.run(scenario())
    assert (caught.value.code, caught.value.permanent, caught.value.ambiguous) == (
        "smtp-connect",
        False,
        False,
    )


def test_smtp_bad_password_is_permanent() -> None:
    async def scenario() -> None:
        async with MailPeer() as peer:
            await mailer(peer.port, password="wrong").send_email(MAIL)

    with pytest.raises(ChannelError) as caught:
        asyncio.run(scenario())
    assert caught.value.permanent and caught.value.code == "smtp-535"


@pytest.mark.parametrize(
    "message",
    [
        EmailMessage("not an address", "s", "t"),
        EmailMessage("a@", "s", "t"),
        EmailMessage("taro@example.jp, jiro@example.jp", "s", "t"),
        EmailMessage("taro@example.jp", "line\nbreak", "t"),
        EmailMessage("taro@example.jp", "s", "t", headers={"From": "evil@example.com"}),
    ],
)
def test_smtp_unusable_message_is_permanent(message: EmailMessage) -> None:
    with pytest.raises(ChannelError) as caught:
        asyncio.run(mailer(free_port()).send_email(message))
    assert caught.value.permanent and caught.value.code == "invalid-message"


def test_smtp_message_id_may_be_given() -> None:
    channel = mailer(25)
    mime = channel.build(
        EmailMessage("taro@example.jp", "s", "t", headers={"Message-ID": "<d-42@city.example.jp>"})
    )
    assert mime["Message-ID"] == "<d-42@city.example.jp>"
    assert len(mime.get_all("Message-ID") or []) == 1
