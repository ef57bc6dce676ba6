"""JMA, played: bulletins of our own making in the structure of JMA's samples (../shared/jma),
with the times of now so that the relay's default RELAY_JMA_MAX_AGE (1 h) holds, and a local
Atom PULL feed that serves them as JMA's feed does. For the tests and the benchmarks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")
TOKYO_OFFSET = "+09:00"


def _jst(moment: datetime) -> str:
    return moment.astimezone(TOKYO).strftime("%Y-%m-%dT%H:%M:%S") + TOKYO_OFFSET


def vxse53(
    event_id: str,
    serial: int,
    kanazawa: str | None,
    *,
    info_type: str = "発表",
    status: str = "通常",
    at: datetime | None = None,
) -> bytes:
    """震源・震度に関する情報: 横浜金沢区 at intensity `kanazawa` (JMA's code: 4, 5-, 5+, ...),
    or a 取消 (info_type) with no body but its text, as JMA sends it."""
    at = at or datetime.now(UTC)
    if info_type == "取消":
        headline = "震源・震度に関する情報を取り消します。"
        body = f"<Text>{headline}</Text>"
    else:
        headline = "地震がありました。"
        body = f"""<Earthquake>
      <OriginTime>{_jst(at)}</OriginTime><ArrivalTime>{_jst(at)}</ArrivalTime>
      <Hypocenter><Area><Name>東京湾</Name><Code type="震央地名">350</Code></Area></Hypocenter>
      <jmx_eb:Magnitude type="Mj" description="Ｍ５．８">5.8</jmx_eb:Magnitude>
    </Earthquake>
    <Intensity><Observation>
      <MaxInt>{kanazawa}</MaxInt>
      <Pref><Name>神奈川県</Name><Code>14</Code><MaxInt>{kanazawa}</MaxInt>
        <Area><Name>神奈川県東部</Name><Code>360</Code><MaxInt>{kanazawa}</MaxInt>
          <City><Name>横浜金沢区</Name><Code>1410800</Code><MaxInt>{kanazawa}</MaxInt>
            <IntensityStation><Name>横浜金沢区白帆＊</Name><Code>1410840</Code><Int>{kanazawa}</Int></IntensityStation>
          </City>
        </Area>
      </Pref>
    </Observation></Intensity>"""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Report xmlns="http://xml.kishou.go.jp/jmaxml1/" xmlns:jmx="http://xml.kishou.go.jp/jmaxml1/">
  <Control>
    <Title>震源・震度に関する情報</Title>
    <DateTime>{at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}</DateTime>
    <Status>{status}</Status>
    <EditorialOffice>気象庁本庁</EditorialOffice>
    <PublishingOffice>気象庁</PublishingOffice>
  </Control>
  <Head xmlns="http://xml.kishou.go.jp/jmaxml1/informationBasis1/">
    <Title>震源・震度情報</Title>
    <ReportDateTime>{_jst(at)}</ReportDateTime>
    <TargetDateTime>{_jst(at)}</TargetDateTime>
    <EventID>{event_id}</EventID>
    <InfoType>{info_type}</InfoType>
    <Serial>{serial}</Serial>
    <InfoKind>地震情報</InfoKind>
    <InfoKindVersion>1.0_0</InfoKindVersion>
    <Headline><Text>{headline}</Text></Headline>
  </Head>
  <Body xmlns="http://xml.kishou.go.jp/jmaxml1/body/seismology1/" xmlns:jmx_eb="http://xml.kishou.go.jp/jmaxml1/elementBasis1/">
    {body}
  </Body>
</Report>
""".encode()


class AtomFeed:
    """JMA's PULL feed on 127.0.0.1: /feed.xml lists the documents published so far, newest
    first, each at /data/<n>.xml; the server counts every fetch of every path."""

    def __init__(self) -> None:
        self.documents: list[tuple[str, bytes]] = []  # (title, document)
        self.fetches: dict[str, int] = {}
        self._lock = threading.Lock()
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with feed._lock:
                    feed.fetches[self.path] = feed.fetches.get(self.path, 0) + 1
                    body = feed._body(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/feed.xml"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def publish(self, title: str, document: bytes) -> str:
        with self._lock:
            self.documents.append((title, document))
            return f"/data/{len(self.documents)}.xml"

    def _body(self, path: str) -> bytes | None:
        if path == "/feed.xml":
            return self._atom()
        if path.startswith("/data/") and path.endswith(".xml"):
            n = path[len("/data/") : -len(".xml")]
            if n.isdigit() and 1 <= int(n) <= len(self.documents):
                return self.documents[int(n) - 1][1]
        return None

    def _atom(self) -> bytes:
        base = self.url.rsplit("/", 1)[0]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        entries = "".join(
            f"""<entry><title>{escape(title)}</title>
<id>urn:uuid:test-entry-{n}</id><updated>{now}</updated>
<author><name>気象庁</name></author>
<link type="application/xml" href="{base}/data/{n}.xml"/>
<content type="text">{escape(title)}</content></entry>"""
            for n, (title, _) in reversed(list(enumerate(self.documents, start=1)))
        )
        return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" lang="ja">
<title>高頻度（地震火山）</title><subtitle>JMAXML publishing feed</subtitle>
<updated>{now}</updated><id>urn:uuid:test-feed</id>
<link href="{self.url}" rel="self"/>{entries}</feed>""".encode()

    def __enter__(self) -> AtomFeed:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
