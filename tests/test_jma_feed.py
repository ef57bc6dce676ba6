"""JMA Atom PULL feed poller (issue 17): a local HTTP server plays xml.kishou.go.jp — an Atom
feed it writes here, honouring ETag / If-Modified-Since, and the documents its entries link
to — and counts every request. Each document is fetched once across polls, an unchanged feed
is a 304, a failing fetch is retried then given up, a failing feed goes stale (health, /readyz,
/metrics) and a hostile feed is refused. The handler is a small recorder written here."""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.config import Settings, load_settings
from relay.db import session_factory, transaction
from relay.jma import feed
from relay.models import JmaEntry, JmaFeed
from relay.web.app import create_app

FEED_PATH = "/feed/extra.xml"
T0 = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)


@dataclass
class Jma:
    """What the fake JMA server serves, and what it was asked."""

    entries: list[tuple[str, str]] = field(default_factory=list)  # (uuid, updated), feed order
    version: int = 1  # the feed's ETag / Last-Modified change with it
    feed_status: int = 200
    raw_feed: bytes | None = None  # served instead of the generated feed
    failing: dict[str, int] = field(default_factory=dict)  # document path -> 500s still to give
    requests: Counter[str] = field(default_factory=Counter)
    feed_answers: list[tuple[str | None, str | None, int]] = field(default_factory=list)
    base: str = ""

    @property
    def url(self) -> str:
        return self.base + FEED_PATH

    @property
    def etag(self) -> str:
        return f'"feed-v{self.version}"'

    @property
    def last_modified(self) -> str:
        return f"Sun, 01 Jun 2025 03:{self.version:02d}:00 GMT"

    def document(self, uuid: str) -> bytes:
        title = f"<Control><Title>{uuid}</Title></Control>"
        return f'<?xml version="1.0"?><Report>{title}</Report>'.encode()

    def atom(self) -> bytes:
        items = "".join(
            f"<entry><title>震度速報</title><id>urn:uuid:{uuid}</id><updated>{updated}</updated>"
            f"<author><name>気象庁</name></author>"
            f'<link type="application/xml" href="{self.base}/data/{uuid}.xml"/></entry>'
            for uuid, updated in self.entries
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ja">'
            f"<title>JMAXML publishing feed</title><id>urn:uuid:feed</id>{items}</feed>"
        ).encode()


def _serve(jma: Jma) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            jma.requests[self.path] += 1
            if self.path == FEED_PATH:
                inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
                if jma.feed_status != 200:
                    status = jma.feed_status
                elif inm == jma.etag or (inm is None and ims == jma.last_modified):
                    status = 304
                else:
                    status = 200
                jma.feed_answers.append((inm, ims, status))
                if status == 200:
                    body = jma.raw_feed if jma.raw_feed is not None else jma.atom()
                    self._send(200, body, ETag=jma.etag, Last_Modified=jma.last_modified)
                elif status == 304:
                    self._send(304, ETag=jma.etag)
                else:
                    self._send(status, b"busy")
                return
            match = re.fullmatch(r"/data/([\w-]+)\.xml", self.path)
            if not match:
                self._send(404)
            elif jma.failing.get(self.path, 0) > 0:
                jma.failing[self.path] -= 1
                self._send(500, b"internal error")
            else:
                self._send(200, jma.document(match.group(1)), Content_Type="application/xml")

    return Handler


@pytest.fixture
def jma() -> Iterator[Jma]:
    state = Jma()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _serve(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


@dataclass(frozen=True)
class Result:
    outcome: str
    bulletin_id: int | None = None


class Recorder:
    """The ingest service's stand-in: keeps what it was handed, in order."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[bytes, str]] = []
        self.fail_on = fail_on

    def __call__(self, session: Session, data: bytes, source: str) -> Result:
        assert session.in_transaction()
        if self.fail_on and source.endswith(self.fail_on):
            session.add(JmaFeed(url="written-by-a-failing-ingest", failures=0))
            session.flush()
            raise RuntimeError("the document broke the ingest")
        self.calls.append((data, source))
        return Result(f"recorded {source.rsplit('/', 1)[-1]}")


def _settings(db_url: str, *feeds: str) -> Settings:
    return load_settings(
        {
            "RELAY_DATABASE_URL": db_url,
            "RELAY_SECRET_KEY": "jma-feed-test-secret-0123",
            "RELAY_JMA_FEEDS": ",".join(feeds),
        }
    )


def _entries(db_url: str) -> dict[str, JmaEntry]:
    with transaction(db_url) as session:
        return {e.link.rsplit("/", 1)[-1]: e for e in session.scalars(select(JmaEntry))}


def _feed_row(db_url: str, url: str) -> JmaFeed:
    with transaction(db_url) as session:
        row = session.scalar(select(JmaFeed).where(JmaFeed.url == url))
        assert row is not None
        return row


def test_each_document_is_fetched_once_and_an_unchanged_feed_is_a_304(db_url, jma) -> None:
    jma.entries = [("b", "2025-06-01T03:05:00Z"), ("a", "2025-06-01T03:00:00Z")]
    settings = _settings(db_url, jma.url)
    sessions = session_factory(db_url)
    handler = Recorder()

    assert feed.poll_feeds(sessions, settings, handler, now=T0) == 2
    assert jma.requests["/data/a.xml"] == jma.requests["/data/b.xml"] == 1
    assert [source for _, source in handler.calls] == [
        f"{jma.base}/data/b.xml",  # newest first
        f"{jma.base}/data/a.xml",
    ]
    assert handler.calls[0][0] == jma.document("b")  # the bytes as served
    rows = _entries(db_url)
    assert rows["a.xml"].entry_id == "urn:uuid:a" and rows["a.xml"].attempts == 1
    assert rows["a.xml"].fetched_at is not None and rows["a.xml"].outcome == "recorded a.xml"
    row = _feed_row(db_url, jma.url)
    assert row.etag == jma.etag and row.last_modified == jma.last_modified

    # Unchanged: the server sees both validators and answers 304; nothing is fetched.
    assert feed.poll_feeds(sessions, settings, handler, now=T0 + timedelta(minutes=1)) == 0
    assert jma.feed_answers[-1] == (jma.etag, jma.last_modified, 304)
    assert _feed_row(db_url, jma.url).ok_at == T0 + timedelta(minutes=1)

    # A new entry on top of the old ones: only it is fetched.
    jma.entries.insert(0, ("c", "2025-06-01T03:10:00Z"))
    jma.version = 2
    assert feed.poll_feeds(sessions, settings, handler, now=T0 + timedelta(minutes=2)) == 1
    assert jma.feed_answers[-1][2] == 200
    assert jma.requests == Counter(
        {FEED_PATH: 3, "/data/a.xml": 1, "/data/b.xml": 1, "/data/c.xml": 1}
    )
    assert len(handler.calls) == 3 and len(_entries(db_url)) == 3

    # The feed changed again but lists the same entries: still nothing fetched twice.
    jma.version = 3
    assert feed.poll_feeds(sessions, settings, handler, now=T0 + timedelta(minutes=3)) == 0
    assert jma.requests["/data/a.xml"] == jma.requests["/data/c.xml"] == 1


def test_a_failing_fetch_is_retried_then_given_up(db_url, jma) -> None:
    jma.entries = [
        ("flaky", "2025-06-01T03:02:00Z"),
        ("broken", "2025-06-01T03:01:00Z"),
        ("fine", "2025-06-01T03:00:00Z"),
    ]
    jma.failing = {"/data/flaky.xml": 1, "/data/broken.xml": 99}
    settings = _settings(db_url, jma.url)
    sessions = session_factory(db_url)
    handler = Recorder()

    assert feed.poll_feeds(sessions, settings, handler) == 1  # fine
    rows = _entries(db_url)
    assert rows["broken.xml"].outcome.startswith("fetch failed (attempt 1 of 3): HTTP 500")
    assert rows["broken.xml"].fetched_at is None

    assert feed.poll_feeds(sessions, settings, handler) == 1  # flaky, on its second try
    rows = _entries(db_url)
    assert rows["flaky.xml"].attempts == 2 and rows["flaky.xml"].outcome == "recorded flaky.xml"

    for _ in range(3):
        feed.poll_feeds(sessions, settings, handler)
    assert jma.requests["/data/broken.xml"] == feed.MAX_ATTEMPTS == 3  # and never again
    assert jma.requests["/data/flaky.xml"] == 2 and jma.requests["/data/fine.xml"] == 1
    broken = _entries(db_url)["broken.xml"]
    assert broken.attempts == 3 and broken.fetched_at is None
    assert broken.outcome.startswith("given up after 3 attempts: fetch failed: HTTP 500")

    jma.failing.clear()  # the server recovers: a given-up entry stays given up
    feed.poll_feeds(sessions, settings, handler)
    assert jma.requests["/data/broken.xml"] == 3
    assert [s.rsplit("/", 1)[-1] for _, s in handler.calls] == ["fine.xml", "flaky.xml"]

    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics").text
    assert 'relay_jma_documents{state="given_up"} 1' in text
    assert 'relay_jma_documents{state="pending"} 0' in text


def test_a_document_that_breaks_the_ingest_does_not_block_the_others(db_url, jma) -> None:
    jma.entries = [("bad", "2025-06-01T03:01:00Z"), ("good", "2025-06-01T03:00:00Z")]
    settings = _settings(db_url, jma.url)
    sessions = session_factory(db_url)

    assert feed.poll_feeds(sessions, settings, Recorder(fail_on="bad.xml")) == 1
    rows = _entries(db_url)
    assert rows["good.xml"].outcome == "recorded good.xml"
    assert rows["bad.xml"].outcome.startswith("ingest failed (attempt 1 of 3): RuntimeError")
    with transaction(db_url) as session:  # the failing ingest's own writes were rolled back
        urls = set(session.scalars(select(JmaFeed.url)))
    assert urls == {jma.url}


def test_a_failing_feed_goes_stale_in_health_readyz_and_metrics(db_url, jma) -> None:
    jma.entries = [("a", "2025-06-01T03:00:00Z")]
    never_read = jma.base + "/feed/eqvol.xml"  # configured, 404: never read
    jma_settings = _settings(db_url, jma.url, never_read)
    sessions = session_factory(db_url)
    start = datetime.now(UTC) - timedelta(minutes=10)

    feed.read_feed(sessions, jma.url, now=start)
    jma.feed_status = 500
    for minutes in (1, 2, 4):
        feed.read_feed(sessions, jma.url, now=start + timedelta(minutes=minutes))
    row = _feed_row(db_url, jma.url)
    assert row.failures == 3 and row.ok_at == start
    assert row.error == f"HTTP 500 from {jma.url}"

    with transaction(db_url) as session:
        # 3 × 60 s: not stale two minutes after the last good read, stale after four.
        later = start + timedelta(minutes=2)
        assert feed.stale_feeds(session, jma_settings, later, up_since=later) == []
        stale = feed.stale_feeds(session, jma_settings, start + timedelta(minutes=4), start)
        assert [h.url for h in stale] == [jma.url, never_read]
        assert stale[0].failures == 3 and stale[0].error == row.error
        # A feed never read counts only once the caller has been up for three intervals.
        now = start + timedelta(minutes=4)
        fresh = feed.stale_feeds(session, jma_settings, now, up_since=now - timedelta(minutes=1))
        assert [h.url for h in fresh] == [jma.url]

    with TestClient(create_app(jma_settings)) as client:
        ready = client.get("/readyz")
        metrics = client.get("/metrics").text
    # Stale is reported, not a reason to leave the load balancer; the never-read feed is not
    # stale yet: this app has just started.
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True and body["jma_feeds"] == "stale"
    assert body["jma_stale"] == [
        {
            "feed": jma.url,
            "last_ok": start.isoformat(),
            "failures": 3,
            "error": f"HTTP 500 from {jma.url}",
        }
    ]
    assert f'relay_jma_feed_stale{{feed="{jma.url}"}} 1' in metrics
    assert f'relay_jma_feed_stale{{feed="{never_read}"}} 0' in metrics
    assert f'relay_jma_feed_failures{{feed="{jma.url}"}} 3' in metrics
    last_ok = re.search(
        rf'^relay_jma_feed_last_ok_seconds{{feed="{jma.url}"}} (\S+)$', metrics, re.M
    )
    assert last_ok and 600 <= float(last_ok.group(1)) < 900
    assert f'relay_jma_feed_last_ok_seconds{{feed="{never_read}"}}' not in metrics

    # The feed answers again: fresh everywhere.
    jma.feed_status = 200
    feed.read_feed(sessions, jma.url)
    assert _feed_row(db_url, jma.url).failures == 0
    with TestClient(create_app(_settings(db_url, jma.url))) as client:
        assert client.get("/readyz").json() == {"ready": True, "database": "ok", "jma_feeds": "ok"}
        assert f'relay_jma_feed_stale{{feed="{jma.url}"}} 0' in client.get("/metrics").text


HOSTILE = b"""<?xml version="1.0"?>
<!DOCTYPE feed [
  <!ENTITY a "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY link "%(base)s/data/entity.xml">
]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>&b;</title>
  <entry><id>urn:uuid:entity</id><title>&b;</title><link href="&link;"/></entry>
</feed>"""


def test_a_hostile_feed_is_refused_with_a_clear_log_line(db_url, jma, caplog) -> None:
    jma.raw_feed = HOSTILE.replace(b"%(base)s", jma.base.encode())
    settings = _settings(db_url, jma.url)
    handler = Recorder()
    with caplog.at_level(logging.WARNING, logger="relay.jma.feed"):
        assert feed.poll_feeds(session_factory(db_url), settings, handler) == 0
    assert jma.requests["/data/entity.xml"] == 0 and handler.calls == []
    assert _entries(db_url) == {}
    row = _feed_row(db_url, jma.url)
    assert row.ok_at is None and row.failures == 1 and "DTD" in (row.error or "")
    assert row.etag is None  # not remembered: the next poll reads it whole again
    assert any(
        r.levelno == logging.WARNING
        and f"JMA feed {jma.url} refused" in r.getMessage()
        and "DTD" in r.getMessage()
        for r in caplog.records
    )


def test_links_must_be_http_on_the_feeds_host(caplog) -> None:
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom">
      <entry><id>urn:uuid:1</id><updated>2025-06-01T03:00:00Z</updated>
        <link href="/data/1.xml"/></entry>
      <entry><id>urn:uuid:2</id><link href="file:///etc/passwd"/></entry>
      <entry><id>urn:uuid:3</id><link href="http://169.254.169.254/latest/meta-data/"/></entry>
      <entry><id>urn:uuid:4</id></entry>
      <entry><id>urn:uuid:5</id><updated>2025-06-01T02:00:00+09:00</updated>
        <link rel="related" href="http://xml.kishou.go.jp/other.html"/>
        <link href="http://xml.kishou.go.jp/data/5.xml"/></entry>
    </feed>"""
    with caplog.at_level(logging.WARNING, logger="relay.jma.feed"):
        entries = feed.parse_feed(atom, "http://xml.kishou.go.jp/feed/extra.xml")
    assert [(e.entry_id, e.link) for e in entries] == [
        ("urn:uuid:5", "http://xml.kishou.go.jp/data/5.xml"),  # oldest first
        ("urn:uuid:1", "http://xml.kishou.go.jp/data/1.xml"),
    ]
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "urn:uuid:2" in warned and "urn:uuid:3" in warned and "without <id> or link" in warned
    with pytest.raises(feed.FeedRefused, match="not an Atom feed"):
        feed.parse_feed(b"<rss/>", "http://xml.kishou.go.jp/feed/extra.xml")


def test_fetch_caps_the_size_and_refuses_other_schemes(jma) -> None:
    jma.entries = [("a", "2025-06-01T03:00:00Z")] * 50
    with pytest.raises(feed.FetchError, match="over the 1000"):
        feed.fetch(jma.url, max_bytes=1000)
    assert feed.fetch(jma.url).status == 200
    with pytest.raises(feed.FetchError, match="not an http"):
        feed.fetch("file:///etc/passwd")


def test_the_scheduler_polls_only_when_feeds_are_configured(monkeypatch, tmp_path) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from relay.delivery.runtime import reset_runtime
    from workers.scheduler import add_jobs, poll_jma_feeds

    monkeypatch.setenv("RELAY_DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    try:
        monkeypatch.setenv("RELAY_JMA_FEEDS", "http://xml.kishou.go.jp/feed/eqvol.xml")
        monkeypatch.setenv("RELAY_JMA_POLL_INTERVAL", "90s")
        reset_runtime()
        job = add_jobs(BackgroundScheduler()).get_job("jma-feeds")
        assert job is not None and job.func is poll_jma_feeds
        assert job.trigger.interval == timedelta(seconds=90)
        monkeypatch.setenv("RELAY_JMA_FEEDS", "")
        reset_runtime()
        assert add_jobs(BackgroundScheduler()).get_job("jma-feeds") is None
    finally:
        reset_runtime()
