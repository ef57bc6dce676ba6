"""Email over SMTP (aiosmtplib), with a small pool of logged-in connections."""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import logging
import ssl
import time
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from channels.base import ChannelError, EmailMessage, Outcome, Receipt
from channels.masking import mask_email, scrub

log = logging.getLogger(__name__)

# Flattened for the wire: CRLF, RFC 2047 for non-ASCII headers (Japanese subject and display
# names), and no raw 8-bit bodies (those are base64-encoded when built).
_WIRE = email.policy.SMTP
# Headers the channel writes itself; callers' `headers` may not replace them (Message-ID may:
# a caller can make it deterministic per delivery, e.g. to match bounces to deliveries).
_OWN_HEADERS = frozenset(
    {"from", "to", "subject", "date", "mime-version", "content-type", "content-transfer-encoding"}
)


class SmtpEmail:
    """`EmailChannel` on an SMTP submission server.

    starttls: True requires STARTTLS, False never uses it, None upgrades when offered
        (aiosmtplib's rule). The certificate is verified; `tls_context` supplies a CA.
    mail_from: "金沢区役所 <relay@city.example.jp>" or a bare address; its domain names the
        Message-IDs and the EHLO.
    pool_size: connections kept open and logged in; also the number of sends in flight.
    """

    provider = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        *,
        mail_from: str,
        starttls: bool | None = None,
        tls_context: ssl.SSLContext | None = None,
        pool_size: int = 4,
        timeout: float = 30.0,
        max_idle_s: float = 60.0,
    ) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.starttls, self.tls_context, self.timeout = starttls, tls_context, timeout
        header = MimeMessage()
        header["From"] = mail_from  # parsed once here: a malformed address fails at start-up
        self.sender: Address = header["From"].addresses[0]
        self.domain = self.sender.domain or "localhost"
        self.pool_size, self.max_idle_s = pool_size, max_idle_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    def build(self, message: EmailMessage) -> MimeMessage:
        """The MIME message: text (and HTML as multipart/alternative), UTF-8, Japanese-safe."""
        mime = MimeMessage()
        mime["From"] = self.sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = formatdate(localtime=False)
        mime["Message-ID"] = make_msgid(domain=self.domain)
        # Automated mail: ask auto-responders (vacation replies) to stay quiet.
        mime["Auto-Submitted"] = "auto-generated"
        for name, value in message.headers.items():
            if name.lower() in _OWN_HEADERS:
                raise ValueError(f"header {name!r} is set by the channel")
            del mime[name]
            mime[name] = value
        mime.set_content(message.text, cte=_cte(message.text))
        if message.html is not None:
            mime.add_alternative(message.html, subtype="html", cte=_cte(message.html))
        return mime

    async def send_email(self, message: EmailMessage) -> Receipt:
        """Submit one email; SENT with its Message-ID once the server accepted it."""
        try:
            mime = self.build(message)
            recipient = _single_address(mime)
            data = mime.as_bytes(policy=_WIRE)
        except (IndexError, ValueError, UnicodeError, MessageError) as exc:
            # Malformed address or a header with a line break: the same message always fails.
            raise ChannelError(
                f"cannot build the email: {exc}", permanent=True, code="invalid-message"
            ) from exc
        message_id = str(mime["Message-ID"])
        slots = self._bind()
        async with slots:
            for attempt in (1, 2):
                smtp, reused = await self._checkout()
                phase = "mail"
                try:
                    await smtp.mail(self.sender.addr_spec)
                    phase = "rcpt"
                    await smtp.rcpt(recipient)
                    phase = "data"
                    await smtp.data(data)
                except aiosmtplib.SMTPResponseException as exc:
                    if exc.code == 421 and phase == "mail" and reused and attempt == 1:
                        self._discard(smtp)  # server ended a long-lived session: reconnect
                        continue
                    await self._after_refusal(smtp)
                    raise self._refused(exc, message.to) from exc
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    self._discard(smtp)
                    if phase != "data" and reused and attempt == 1:
                        continue  # a pooled connection the server had dropped: reconnect
                    # After DATA was sent the server may have taken the message: ambiguous.
                    raise ChannelError(
                        f"SMTP connection failed during {phase}: {type(exc).__name__}",
                        permanent=False,
                        code="smtp-network",
                        ambiguous=phase == "data",
                    ) from exc
                except (ValueError, UnicodeError) as exc:  # address aiosmtplib can't quote
                    await self._after_refusal(smtp)
                    raise ChannelError(
                        f"unusable address: {exc}", permanent=True, code="invalid-address"
                    ) from exc
                except BaseException:  # cancelled mid-transaction: the session state is unknown
                    self._discard(smtp)
                    raise
                self._idle.append((smtp, time.monotonic()))
                log.debug("email to %s accepted: %s", mask_email(message.to), message_id)
                return Receipt(provider=self.provider, provider_id=message_id, outcome=Outcome.SENT)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _refused(self, exc: aiosmtplib.SMTPResponseException, to: str) -> ChannelError:
        # Servers often quote the refused address back: scrubbed for logs and records.
        text = scrub(exc.message)
        log.warning("email to %s refused: %d %s", mask_email(to), exc.code, text)
        return ChannelError(
            f"SMTP {exc.code}: {text}", permanent=exc.code >= 500, code=f"smtp-{exc.code}"
        )

    # --- the pool -------------------------------------------------------------------------

    def _bind(self) -> asyncio.Semaphore:
        """The pool belongs to one event loop; a new loop (e.g. a new asyncio.run) starts over."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._slots is None:
            for smtp, _ in self._idle:
                self._discard(smtp)
            self._idle.clear()
            self._loop, self._slots = loop, asyncio.Semaphore(self.pool_size)
        return self._slots

    async def _checkout(self) -> tuple[aiosmtplib.SMTP, bool]:
        while self._idle:
            smtp, since = self._idle.pop()
            if smtp.is_connected and time.monotonic() - since < self.max_idle_s:
                return smtp, True
            self._discard(smtp)
        return await self._connect(), False

    async def _connect(self) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            start_tls=self.starttls,
            tls_context=self.tls_context,
            timeout=self.timeout,
            # Not socket.getfqdn(): it can stall on DNS; the sender's domain is what we are.
            local_hostname=self.domain,
        )
        try:
            try:
                await smtp.connect()
            except BaseException:
                self._discard(smtp)  # connected but refused (e.g. login): don't leak the socket
                raise
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise ChannelError(
                f"SMTP login refused: {exc.code}", permanent=True, code=f"smtp-{exc.code}"
            ) from exc
        except aiosmtplib.SMTPNotSupported as exc:  # e.g. STARTTLS required but not offered
            raise ChannelError(
                f"SMTP server lacks what we need: {exc}", permanent=True, code="smtp-config"
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Nothing was submitted yet: a plain transient error, never ambiguous.
            raise ChannelError(
                f"cannot connect to SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}",
                permanent=False,
                code="smtp-connect",
            ) from exc
        return smtp

    async def _after_refusal(self, smtp: aiosmtplib.SMTP) -> None:
        """Reset the envelope so the connection can carry the next message; drop it if not."""
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            self._discard(smtp)
            return
        self._idle.append((smtp, time.monotonic()))

    @staticmethod
    def _discard(smtp: aiosmtplib.SMTP) -> None:
        with contextlib.suppress(RuntimeError):  # its event loop is already closed
            smtp.close()

    async def close(self) -> None:
        """QUIT every pooled connection (call on the loop that used the channel)."""
        idle, self._idle = self._idle, []
        protocols = [smtp.protocol for smtp, _ in idle if smtp.protocol is not None]
        for smtp, _ in idle:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError, RuntimeError):
                self._discard(smtp)
        # A TLS connection finishes closing a few loop turns after QUIT (close_notify); if the
        # loop ended first, its socket would be left open. Wait for that, briefly.
        deadline = time.monotonic() + 1.0
        while any(p.transport is not None for p in protocols) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


def _single_address(mime: MimeMessage) -> str:
    """The one envelope recipient named by To; ValueError unless it is exactly one mailbox."""
    addresses = mime["To"].addresses
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise ValueError(f"To must be exactly one address, got {len(addresses)} or a partial one")
    return str(addresses[0].addr_spec)


def _cte(text: str) -> str | None:
    # 7-bit clean on the wire without relying on the server's 8BITMIME; base64 is the compact
    # choice for Japanese (quoted-printable triples it).
    return None if text.isascii() else "base64"
