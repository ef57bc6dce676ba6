"""The SMTP side: a mail server on loopback whose mailboxes accept, refuse or defer mail.

The server is aiosmtpd's SMTP protocol served on the simulator's own event loop (rather than
by aiosmtpd's Controller, which runs a second loop in its own thread): recipients' link taps,
the log and `wait_idle` then all live on one loop, and port 0 works.
"""

from __future__ import annotations

import asyncio
import ssl
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .behaviour import Behaviour
from .callbacks import Party
from .context import Context
from .links import fill_in, find_link, tap
from .log import LogRecord

HOSTNAME = "127.0.0.1"


class Certificates:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost (STARTTLS)."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self._server_cert = self.ca.issue_cert("127.0.0.1", "localhost")

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem.bytes()

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this CA, for clients such as aiosmtplib."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


class MailHandler:
    """aiosmtpd handler: decides per recipient, records each accepted mail per recipient."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        behaviour = self.ctx.population.behaviour_for(address)
        attempt = self.ctx.next_attempt("email", address)
        if attempt < behaviour.email_defer_times:
            self._refused(envelope, address, 451, "deferred")
            return "451 4.3.0 Mailbox temporarily unavailable, try again later"
        if behaviour.email_outcome == "reject":
            self._refused(envelope, address, 550, "rejected")
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        subject = str(message.get("Subject", ""))
        message_id = str(message.get("Message-ID", "")) or None
        text = _part(message, "plain")
        html = _part(message, "html")
        for address in envelope.rcpt_tos:
            behaviour = self.ctx.population.behaviour_for(address, text or "")
            self.ctx.log.append(
                LogRecord(
                    kind="email",
                    to=address,
                    from_=envelope.mail_from,
                    sid=message_id,
                    subject=subject,
                    body=text,
                    html=html,
                    status=250,
                    result="accepted",
                    reminded=behaviour.reminder,
                )
            )
            self._maybe_tap(address, message_id, text or "", behaviour)
        return "250 Message accepted for delivery"

    def _refused(self, envelope: Envelope, address: str, status: int, result: str) -> None:
        self.ctx.log.append(
            LogRecord(
                kind="email", to=address, from_=envelope.mail_from, status=status, result=result
            )
        )

    def _maybe_tap(
        self, address: str, message_id: str | None, text: str, behaviour: Behaviour
    ) -> None:
        answer, form = behaviour.email_link_answer, behaviour.email_link_form
        if (answer is None and not form) or not self.ctx.callbacks:
            return
        link = find_link(text, self.ctx.link_base)
        if link is None:
            return

        async def tap_link() -> None:
            party = Party(to=address, sid=message_id, reminded=behaviour.reminder)
            if form:
                await fill_in(self.ctx.courier, link, form, party, answer)
            elif answer is not None:
                await tap(self.ctx.courier, link, answer, party)

        self.ctx.scheduler.later(behaviour.email_link_delay, tap_link)


def _part(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    content = part.get_content()
    return content if isinstance(content, str) else None


async def serve_smtp(
    ctx: Context,
    *,
    host: str,
    port: int,
    username: str | None,
    password: str | None,
    certificates: Certificates | None,
) -> asyncio.Server:
    """Start the SMTP server on the running loop; AUTH when a username is set."""
    loop = asyncio.get_running_loop()
    handler = MailHandler(ctx)
    tls = certificates.server_context() if certificates else None

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == username
            and data.password.decode() == password
        )
        # handled=False: let aiosmtpd answer 535 (its default, True, answers nothing at all).
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname=HOSTNAME,  # not socket.getfqdn(): that can stall on a DNS lookup
            tls_context=tls,
            authenticator=authenticate if username is not None else None,
            auth_required=username is not None,
            # Credentials only over TLS when TLS is offered; in plain mode allow them in clear
            # (loopback test peer).
            auth_require_tls=tls is not None,
            enable_SMTPUTF8=True,
            loop=loop,
        )

    return await loop.create_server(factory, host=host, port=port)
