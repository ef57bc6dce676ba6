"""JMA's Atom PULL feeds, polled by `relay scheduler` every `RELAY_JMA_POLL_INTERVAL`.

Each poll reads every configured feed with a conditional GET (If-None-Match /
If-Modified-Since from its `JmaFeed` row; 304 = nothing new), records the entries it has not
seen (keyed by Atom <id>), then fetches each recorded entry's document once and hands its
bytes to the handler (`ingest_document` in the scheduler), newest first, each in its own
transaction. A fetch or an ingest that fails is tried again at later polls, `MAX_ATTEMPTS` in
all (the attempt is counted before the request, so even a crash cannot make it fetch forever),
then given up with the outcome saying so: JMA blocks addresses that fetch the same files over
and over. Requests: http/https only, `FETCH_TIMEOUT_S` for the whole answer, a size cap, no
DTDs (defusedxml); an entry whose link leaves the feed's host is dropped with a warning.

Health: `feed_health` / `stale_feeds`. A configured feed is stale when its last good read
(200 or 304) is older than `STALE_POLLS` poll intervals — or, never read, once the caller
(the web process) has been up that long.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.client import HTTPMessage
from typing import IO, Protocol
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from relay.config import Settings
from relay.models import JmaEntry, JmaFeed

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # fetches (and ingests) of one document before it is given up
FETCH_TIMEOUT_S = 10.0  # for the whole answer, not each read
MAX_FEED_BYTES = 16 * 1024 * 1024  # the long feeds (extra_l.xml) run to a few MB
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024  # JMA documents are tens to hundreds of kB
STALE_POLLS = 3  # a feed not read for this many poll intervals is stale
USER_AGENT = "kanazawa-relay (JMA PULL; polls each feed at most once a minute)"
ATOM = "{http://www.w3.org/2005/Atom}"


class Handled(Protocol):
    """What the handler returns (relay.jma.ingest.Ingested)."""

    @property
    def outcome(self) -> str: ...

    @property
    def bulletin_id(self) -> int | None: ...


# handle(session, data, source): called inside the entry's transaction; source is the link.
Handler = Callable[[Session, bytes, str], Handled]


class FeedRefused(ValueError):
    """The feed is not an Atom feed the relay reads (DTD, entities, malformed, not Atom)."""


class FetchError(Exception):
    """A request that did not give a usable answer, in one line."""


@dataclass(frozen=True)
class AtomEntry:
    entry_id: str
    title: str
    updated: datetime | None
    link: str


@dataclass(frozen=True)
class Fetched:
    status: int  # 200, or 304 (not modified: body empty)
    url: str  # after redirects
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FeedHealth:
    url: str
    checked_at: datetime | None  # last attempt
    ok_at: datetime | None  # last good read (200 or 304)
    failures: int  # in a row
    error: str | None
    stale: bool


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FetchError | FeedRefused):
        return _one_line(str(exc))
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return _one_line(f"{type(exc.reason).__name__}: {exc.reason}")
    return _one_line(f"{type(exc).__name__}: {exc}")


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise FetchError(f"redirected to a non-http(s) address: {newurl[:200]}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_HttpOnlyRedirects)


def fetch(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    timeout: float = FETCH_TIMEOUT_S,
) -> Fetched:
    """One GET: 200 with the body, or 304; anything else raises FetchError (or the network's
    own OSError). The whole answer must come within `timeout` and stay under `max_bytes`."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"not an http(s) address: {url[:200]}")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310 (checked above)
    if etag:
        request.add_header("If-None-Match", etag)
    if last_modified:
        request.add_header("If-Modified-Since", last_modified)
    deadline = time.monotonic() + timeout
    try:
        response = _opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304:
            return Fetched(304, url, etag=etag, last_modified=last_modified)
        raise FetchError(f"HTTP {exc.code} from {url[:200]}") from None
    with response:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise FetchError(f"{url[:200]}: {declared} bytes, over the {max_bytes} limit")
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read1(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(f"{url[:200]}: over the {max_bytes}-byte limit")
            if time.monotonic() > deadline:
                raise FetchError(f"{url[:200]}: took longer than {timeout:g} s")
            chunks.append(chunk)
        return Fetched(
            response.status,
            response.geturl(),
            b"".join(chunks),
            response.headers.get("ETag"),
            response.headers.get("Last-Modified"),
        )


def _text(element: Element, tag: str) -> str:
    found = element.find(ATOM + tag)
    return (found.text or "").strip() if found is not None else ""


def _timestamp(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_feed(data: bytes, url: str, final_url: str | None = None) -> list[AtomEntry]:
    """The feed's entries, oldest first. Raises FeedRefused for a DTD, an entity, malformed
    XML or a document that is not an Atom feed. Links resolve against the feed's address;
    those not http(s) or off the feed's host (`url`'s or, after a redirect, `final_url`'s)
    are dropped with a warning."""
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise FeedRefused(f"refused: the feed declares a DTD or entities ({exc})") from None
    except ParseError as exc:
        raise FeedRefused(f"not well-formed XML: {exc}") from None
    if root.tag != ATOM + "feed":
        raise FeedRefused(f"not an Atom feed (root element {root.tag[:100]})")
    base = final_url or url
    hosts = {urlsplit(url).hostname, urlsplit(base).hostname}
    entries = []
    for element in root.iter(ATOM + "entry"):
        entry_id = _text(element, "id")
        links = [
            link.get("href", "").strip()
            for link in element.findall(ATOM + "link")
            if link.get("rel", "alternate") == "alternate"
        ]
        link = urljoin(base, links[0]) if links and links[0] else ""
        if not entry_id or not link:
            log.warning("JMA feed %s: an entry without <id> or link is skipped", url)
            continue
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or parts.hostname not in hosts:
            log.warning(
                "JMA feed %s: entry %s links off the feed's host (%s); not fetched",
                url,
                entry_id[:200],
                link[:200],
            )
            continue
        entries.append(
            AtomEntry(
                entry_id[:500],
                _text(element, "title")[:200],
                _timestamp(_text(element, "updated")),
                link[:500],
            )
        )
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(entries, key=lambda e: e.updated or oldest)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _feed_row(session: Session, url: str) -> JmaFeed:
    feed = session.scalar(select(JmaFeed).where(JmaFeed.url == url))
    if feed is None:
        feed = JmaFeed(url=url, failures=0)
        session.add(feed)
        session.flush()
    return feed


def _record_entries(session: Session, url: str, entries: list[AtomEntry], now: datetime) -> int:
    """Entries not yet in jma_entries, oldest first (ids grow with <updated>)."""
    known: set[str] = set()
    ids = [e.entry_id for e in entries]
    for start in range(0, len(ids), 500):
        known.update(
            session.scalars(
                select(JmaEntry.entry_id).where(JmaEntry.entry_id.in_(ids[start : start + 500]))
            )
        )
    new = 0
    for entry in entries:
        if entry.entry_id in known:
            continue
        known.add(entry.entry_id)
        session.add(
            JmaEntry(
                entry_id=entry.entry_id,
                feed_url=url,
                link=entry.link,
                title=entry.title,
                seen_at=now,
                attempts=0,
            )
        )
        new += 1
    return new


def read_feed(sessions: sessionmaker[Session], url: str, now: datetime | None = None) -> int:
    """One conditional GET of one feed: records its health and its new entries (no documents
    are fetched here). Returns how many entries were new; a failure is recorded, not raised."""
    with sessions.begin() as session:
        feed = _feed_row(session, url)
        etag, last_modified = feed.etag, feed.last_modified
    try:
        got = fetch(url, etag=etag, last_modified=last_modified, max_bytes=MAX_FEED_BYTES)
        entries = parse_feed(got.body, url, got.url) if got.status != 304 else []
    except Exception as exc:
        error = _describe(exc)
        if isinstance(exc, FeedRefused):
            log.warning("JMA feed %s refused: %s", url, error)
        else:
            log.warning("JMA feed %s could not be read: %s", url, error)
        with sessions.begin() as session:
            feed = _feed_row(session, url)
            feed.checked_at = _now(now)
            feed.failures = (feed.failures or 0) + 1
            feed.error = error
        return 0
    with sessions.begin() as session:
        feed = _feed_row(session, url)
        feed.checked_at = feed.ok_at = _now(now)
        feed.failures = 0
        feed.error = None
        if got.status != 304:
            feed.etag = got.etag if got.etag and len(got.etag) <= 300 else None
            modified = got.last_modified
            feed.last_modified = modified if modified and len(modified) <= 100 else None
        new = _record_entries(session, url, entries, _now(now))
    if new:
        log.info("JMA feed %s: %d new entries", url, new)
    return new


def _set(sessions: sessionmaker[Session], entry_id: int, **values: object) -> None:
    with sessions.begin() as session:
        session.execute(update(JmaEntry).where(JmaEntry.id == entry_id).values(**values))


def _failed(attempt: int, what: str, error: str) -> str:
    if attempt >= MAX_ATTEMPTS:
        return _one_line(f"given up after {attempt} attempts: {what} failed: {error}")
    return _one_line(f"{what} failed (attempt {attempt} of {MAX_ATTEMPTS}): {error}")


def fetch_pending(
    sessions: sessionmaker[Session],
    feeds: Iterable[str],
    handle: Handler,
    now: datetime | None = None,
) -> int:
    """Fetch and hand over the documents of these feeds' entries not yet read and not given
    up, newest first, one transaction each. Returns how many were handed to `handle`."""
    with sessions() as session:
        pending = session.execute(
            select(JmaEntry.id, JmaEntry.attempts, JmaEntry.link)
            .where(
                JmaEntry.feed_url.in_(list(feeds)),
                JmaEntry.fetched_at.is_(None),
                JmaEntry.attempts < MAX_ATTEMPTS,
            )
            .order_by(JmaEntry.id.desc())
        ).all()
    handed = 0
    for row_id, seen, link in pending:
        attempt = seen + 1
        # The attempt is counted before the request: a crash mid-fetch still uses it up. A
        # second scheduler that got here first makes this claim miss.
        with sessions.begin() as session:
            claim = session.execute(
                update(JmaEntry)
                .where(
                    JmaEntry.id == row_id,
                    JmaEntry.attempts == seen,
                    JmaEntry.fetched_at.is_(None),
                )
                .values(attempts=attempt)
            )
            if getattr(claim, "rowcount", 0) != 1:
                continue
        try:
            got = fetch(link, max_bytes=MAX_DOCUMENT_BYTES)
            if got.status != 200:
                raise FetchError(f"HTTP {got.status} from {link[:200]}")
        except Exception as exc:
            outcome = _failed(attempt, "fetch", _describe(exc))
            log.warning("JMA document %s: %s", link, outcome)
            _set(sessions, row_id, outcome=outcome)
            continue
        try:
            with sessions.begin() as session:
                result = handle(session, got.body, link)
                session.execute(
                    update(JmaEntry)
                    .where(JmaEntry.id == row_id)
                    .values(
                        fetched_at=_now(now),
                        outcome=_one_line(result.outcome),
                        bulletin_id=result.bulletin_id,
                    )
                )
        except Exception as exc:
            outcome = _failed(attempt, "ingest", _describe(exc))
            log.exception("JMA document %s: %s", link, outcome)
            _set(sessions, row_id, outcome=outcome)
            continue
        handed += 1
    return handed


def poll_feeds(
    sessions: sessionmaker[Session],
    settings: Settings,
    handle: Handler,
    now: datetime | None = None,
) -> int:
    """One poll of every configured feed, then the documents of new (and retried) entries.
    Returns how many documents were handed to `handle`."""
    for url in settings.jma_feeds:
        try:
            read_feed(sessions, url, now)
        except Exception:  # the database, most likely: the next poll tries again
            log.exception("JMA feed %s: the poll failed; trying again at the next one", url)
    return fetch_pending(sessions, settings.jma_feeds, handle, now)


def stale_after(settings: Settings) -> timedelta:
    return timedelta(seconds=STALE_POLLS * settings.jma_poll_s)


def feed_health(
    session: Session, settings: Settings, now: datetime, up_since: datetime | None = None
) -> list[FeedHealth]:
    """Every configured feed's health, in configuration order. `up_since`: when the caller
    started; a feed never read is stale once that is `stale_after` ago (None: already)."""
    rows = {
        f.url: f
        for f in session.scalars(select(JmaFeed).where(JmaFeed.url.in_(settings.jma_feeds)))
    }
    limit = stale_after(settings)
    up_long_enough = up_since is None or now - up_since > limit
    health = []
    for url in settings.jma_feeds:
        row = rows.get(url)
        ok_at = row.ok_at if row else None
        stale = now - ok_at > limit if ok_at else up_long_enough
        health.append(
            FeedHealth(
                url,
                row.checked_at if row else None,
                ok_at,
                row.failures if row else 0,
                row.error if row else None,
                stale,
            )
        )
    return health


def stale_feeds(
    session: Session, settings: Settings, now: datetime, up_since: datetime | None = None
) -> list[FeedHealth]:
    """The configured feeds not read successfully for longer than `stale_after`."""
    return [h for h in feed_health(session, settings, now, up_since) if h.stale]
