"""A JMA bulletin's prepared alert in a real browser (Playwright driving Debian's Chromium)
against the real stack: HTTP app, a `relay worker` on Redis, the carrier simulator. A
土砂災害警戒情報 for 横浜市南部 goes through the real ingest path; the dashboard shows its draft on
top with the bulletin's words and time and the Japanese texts; a viewer sees it without buttons;
the operator's one confirmation (実際の警報) issues it; the alert's page and the simulator show
that it went to the cliff-zone associations only. Screenshots: test-artifacts/console-draft-*.png.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from relay.db import transaction
from relay.jma.ingest import ingest_document
from relay.models import Organization, Recipient
from simulator import Behaviour, Population
from tests.chromium import CHROMIUM, needs_chromium, page_shot
from tests.console_support import PASSWORD, e164, make_users
from tests.harness import Stack
from tests.test_console_drafts import CLIFF, FIXTURE, ORGS, write_directory

pytestmark = [pytest.mark.slow, needs_chromium]
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = playwright.expect

# Everyone who gets the SMS answers 1 — except gake-3, who stays silent — so a message sent to
# anyone outside the cliff zone would show up as an acknowledgement too.
SILENT = "gake-3"


def mobile(n: int) -> str:
    return e164(f"090-9999-30{n}0")  # tests.test_console_drafts.write_directory's numbers


def _sign_in(page: object, base: str, name: str) -> None:
    p = page  # type: ignore[assignment]
    p.goto(f"{base}/console/login")
    p.fill("#name", name)
    p.fill("#password", PASSWORD)
    p.click("button[type=submit]")
    p.wait_for_url(f"{base}/console")


def test_draft_from_a_landslide_bulletin_issued_in_chromium(
    sqlite_url: str, tmp_path: Path
) -> None:
    import workers.tasks  # noqa: F401  (registers the outbox publisher in the web app's process)

    population = Population(speed=2)
    for n, (code, *_) in enumerate(ORGS, start=1):
        if code != SILENT:
            population.set(mobile(n), Behaviour(sms_reply="1", sms_reply_delay=2))
    with Stack(sqlite_url, tmp_path, population, env={"RELAY_JMA_MAX_AGE": "0"}) as stack:
        stack.import_directory(write_directory(tmp_path / "directory.csv"))
        make_users(sqlite_url, ("viewer", "operator"))
        with transaction(sqlite_url) as session:
            ingested = ingest_document(session, stack.settings, FIXTURE.read_bytes(), FIXTURE.name)
        assert ingested.draft_id, ingested.outcome
        base = stack.public_url
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            refused: list[str] = []  # the console's scripts all run under its CSP
            try:
                viewer = browser.new_context(
                    locale="ja-JP", viewport={"width": 1200, "height": 900}
                )
                v = viewer.new_page()
                v.set_default_timeout(20_000)
                v.on("console", lambda m: refused.append(m.text) if "Security" in m.text else 0)
                _sign_in(v, base, "viewer")
                card = v.locator(f"#draft-{ingested.draft_id}")
                expect(card).to_contain_text("土砂災害警戒情報")
                assert v.locator("[data-action=issue]").count() == 0
                assert "発信・破棄は操作員が行います" in card.inner_text()

                operator = browser.new_context(
                    locale="ja-JP", viewport={"width": 1200, "height": 900}
                )
                p = operator.new_page()
                p.set_default_timeout(20_000)
                p.on("console", lambda m: refused.append(m.text) if "Security" in m.text else 0)
                alert_id = _operator(p, base, ingested.draft_id)
                assert refused == []
            finally:
                browser.close()

        # What actually went out: SMS and email to the cliff-zone associations' leaders only.
        stack.wait_sent(alert_id)
        cliff_numbers = {mobile(n) for n, (code, *_) in enumerate(ORGS, 1) if code in CLIFF}
        sms_to = {r.to for r in stack.sim.log.sms_requests()}
        assert sms_to == cliff_numbers
        mail_to = {(r.to or "").lower() for r in stack.sim.log.of_kind("email")}
        assert mail_to == {f"{code}@example.jp" for code in CLIFF}
        with transaction(sqlite_url) as session:
            codes = set(
                session.scalars(
                    select(Organization.code)
                    .join(Recipient, Recipient.organization_id == Organization.id)
                    .where(Recipient.alert_id == alert_id)
                )
            )
        assert codes == CLIFF


def _operator(page: object, base: str, draft_id: int) -> int:
    p = page  # type: ignore[assignment]
    _sign_in(p, base, "operator")
    # On top of the dashboard, above the active alerts, clearly marked.
    main = p.inner_text("main")
    assert main.index("JMA発表に基づく下書き") < main.index("進行中の警報")
    card = p.locator(f"#draft-{draft_id}")
    text = card.inner_text()
    for words in ("土砂災害警戒情報", "横浜地方気象台", "2025-06-30 17:10 発表", "実際の警報"):
        assert words in text, words
    assert "土砂災害" in card.locator("pre.bulletin-text").inner_text()  # JMA's own words
    assert card.locator(".draft-reach").inner_text() == "3 団体・3 人"
    sms = card.locator("pre.sms").inner_text()
    assert sms and not sms.startswith("【訓練】")
    assert card.locator("pre.voice").inner_text()
    assert card.locator("pre.email").inner_text()
    page_shot(p, "console-draft-dashboard")

    card.locator("[data-action=issue]").click()
    p.wait_for_url(f"{base}/console/drafts/{draft_id}")
    assert "これは実際の警報です" in p.inner_text("#kind-banner")
    assert p.inner_text(".draft-reach") == "3 団体・3 人"
    page_shot(p, "console-draft-confirm")
    p.click("#issue-button")  # the one confirmation
    p.wait_for_url(f"{base}/console/alerts/*")
    alert_id = int(p.url.split("/")[-1].split("?")[0])
    assert p.inner_text("#recipients") == "3"
    assert "JMA発表に基づく下書き" in p.inner_text("#from-draft")
    # The two cliff-zone leaders who answer are counted; the third is the one silent
    # organization; nobody outside the cliff zone is in the alert at all.
    expect(p.locator("#acknowledged")).to_have_text("2", timeout=60_000)
    silent = p.locator("#silent tbody tr")
    assert silent.count() == 1 and silent.get_attribute("data-org") == SILENT
    districts = p.locator("#districts tbody tr td:first-child").all_inner_texts()
    assert sorted(districts) == sorted(["釜利谷", "六浦", "能見台"])
    page_shot(p, "console-draft-alert")

    p.goto(f"{base}/console")
    assert p.locator("#drafts").count() == 0  # issued: no longer a draft
    return alert_id
