"""The console in a real browser (Playwright driving Debian's Chromium, never a downloaded one)
against the real stack: HTTP app, a `relay worker` on Redis, the carrier simulator playing the
recipients. An operator signs in, issues an exercise to one district with the live preview and
the confirmation step, watches the live page count the simulator's SMS replies without
reloading, acknowledges a silent association by hand and cancels the alert; a coordinator runs
a drill and opens its report. Screenshots go to test-artifacts/console-*.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.db import transaction
from relay.drills import service
from relay.models import Alert
from simulator import Behaviour, Population
from tests.chromium import CHROMIUM, needs_chromium, page_shot
from tests.console_support import ORGS, PASSWORD, e164, make_users, write_directory
from tests.harness import Stack, wait_until

pytestmark = [pytest.mark.slow, needs_chromium]
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = playwright.expect

# nishi-1 and nishi-2 answer the SMS (after the simulator's delivery and these delays, halved
# by speed 2); nishi-3 stays silent and is acknowledged by hand. kana-* are the drill's
# audience: kana-1 answers it, kana-2 never does.
# nishi-2 answers the damage report in one SMS, full-width, the way the help text says: 負傷者あり
# and a fire (both critical), no building damage, roads clear.
REPLIES = {"nishi-1": "１", "nishi-2": "２　１　１　２", "kana-1": "1"}


def test_operator_and_coordinator_in_chromium(sqlite_url: str, tmp_path: Path) -> None:
    import workers.tasks  # noqa: F401  (registers the outbox publisher in the web app's process)

    population = Population(speed=2)
    for delay, (code, _, _, mobile, _) in enumerate(ORGS):
        if code in REPLIES:
            population.set(
                e164(mobile), Behaviour(sms_reply=REPLIES[code], sms_reply_delay=2 + 4 * delay)
            )
    with Stack(sqlite_url, tmp_path, population) as stack:
        stack.import_directory(write_directory(tmp_path / "directory.csv"))
        make_users(sqlite_url, ("operator", "coordinator"))
        with transaction(sqlite_url) as session:
            service.save_schedule(
                session,
                service.ScheduleSpec(
                    name="quarterly",
                    cron="0 10 1-7 1,4,7,10 1",
                    audience="district:金沢",
                    channels=("sms",),
                ),
                actor="test",
            )
        base = stack.public_url
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                operator = browser.new_context(
                    locale="ja-JP", viewport={"width": 1200, "height": 900}
                )
                page = operator.new_page()
                page.set_default_timeout(20_000)
                refused: list[str] = []  # the console's scripts all run under its CSP
                page.on("console", lambda m: refused.append(m.text) if "Security" in m.text else 0)
                _operator(page, base, stack)
                coordinator = browser.new_context(
                    locale="ja-JP", viewport={"width": 1200, "height": 900}
                )
                second = coordinator.new_page()
                second.on(
                    "console", lambda m: refused.append(m.text) if "Security" in m.text else 0
                )
                _coordinator(second, base)
                assert refused == []
            finally:
                browser.close()


def _sign_in(page: object, base: str, name: str) -> None:
    p = page  # type: ignore[assignment]
    p.goto(f"{base}/console")
    assert "/console/login" in p.url  # not signed in: the sign-in form
    p.fill("#name", name)
    p.fill("#password", "not-the-password")
    p.click("button[type=submit]")
    assert "ユーザー名またはパスワードが正しくありません" in p.inner_text("main")
    p.fill("#password", PASSWORD)
    p.click("button[type=submit]")
    p.wait_for_url(f"{base}/console")


def _operator(page: object, base: str, stack: Stack) -> None:
    p = page  # type: ignore[assignment]
    _sign_in(p, base, "operator")
    assert "進行中の警報はありません" in p.inner_text("main")

    p.click("text=警報を発令する")
    p.check("input[name=status][value=Exercise]")
    p.select_option("#template", "earthquake")
    p.fill("#var_intensity", "5強")
    p.fill("#var_area", "西柴")
    p.fill("#audience", "district:西柴")
    p.check("input[name=questions][value=damage-report]")
    expect(p.locator("#preview-questions")).to_contain_text("自治会町内会: 人的被害（必須）")
    # The preview: three associations, every SMS a 【訓練】 within its segment budget.
    # (Waits by locator: the page's CSP forbids string eval, which wait_for_function uses.)
    expect(p.locator("#preview-summary")).to_have_attribute("data-recipients", "3")
    assert "3 団体・3 人" in p.inner_text("#preview-summary")
    sms = p.inner_text("[data-lang=ja] pre.sms")
    assert sms.startswith("【訓練】") and "西柴" in sms
    assert "これは訓練です" in p.inner_text("[data-lang=ja] pre.voice")
    p.uncheck("input[name=channels][value=voice]")  # the preview follows: no call text
    p.wait_for_selector("[data-lang=ja] pre.voice", state="detached")
    assert int(p.get_attribute("[data-lang=ja] [data-segments]", "data-segments")) == 1
    assert p.locator("[data-sms-note]").count() == 0  # one segment: nothing to warn about
    page_shot(p, "console-issue-preview")

    p.click("text=確認画面へ")
    assert "これは訓練です（実際の警報ではありません）" in p.inner_text("#kind-banner")
    assert "3 団体・3 人" in p.inner_text("#confirm-recipients")
    page_shot(p, "console-issue-confirm")
    p.click("#issue-button")
    p.wait_for_url(f"{base}/console/alerts/*")
    alert_id = int(p.url.split("/")[-1].split("?")[0])
    assert p.inner_text("#recipients") == "3"

    # Live: the page polls; the counts move as the simulator delivers and the leaders reply.
    p.evaluate("window.notReloaded = true")
    expect(p.locator("#acknowledged")).to_have_text("2", timeout=60_000)
    expect(p.locator('[data-count="sms.delivered"]')).to_have_text("3")
    assert p.evaluate("window.notReloaded") is True  # updated in place, not by reloading
    silent = p.locator("#silent tbody tr")
    assert silent.count() == 1 and silent.get_attribute("data-org") == "nishi-3"
    assert "西柴" in p.inner_text("#districts")
    assert stack.status(alert_id)["acknowledged"] == 2
    # The situation report, in place too: nishi-2's critical answers first, the tallies.
    expect(p.locator("#answers-critical tbody tr")).to_have_count(2)
    assert p.locator("#answers-critical tr[data-org=nishi-2]").count() == 2
    critical = p.inner_text("#answers-critical")
    assert "人的被害: 負傷者あり" in critical and "火災: はい" in critical
    assert "必須の報告: 1 / 3 団体" in p.inner_text("#answers-summary")
    assert p.locator("[data-question=injured] svg rect").count() == 3
    assert "nishi-1" in p.inner_text("#answers-missing")  # acknowledged, no report
    assert p.evaluate("window.notReloaded") is True
    page_shot(p, "console-alert-live")

    row = p.locator("#silent tr[data-org=nishi-3]")
    row.locator("input[name=note]").fill("電話で会長に確認")
    row.locator("button").click()
    p.wait_for_url("**?done=ack")
    assert p.inner_text("#acknowledged") == "3" and p.is_visible("#silent-empty")

    p.check("#cancel-form input[name=confirm]")
    p.click("#cancel-form button")
    p.wait_for_url("**?done=cancel")
    assert p.inner_text("#state") == "取消済み"
    page_shot(p, "console-alert-cancelled")
    with transaction(stack.settings.database_url) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None and alert.state == "cancelled"
    p.goto(f"{base}/console")
    assert "進行中の警報はありません" not in p.inner_text("main")  # the cancel notice is active
    assert "取消済み" in p.inner_text("main")  # among the alerts that ended
    page_shot(p, "console-dashboard")


def _coordinator(page: object, base: str) -> None:
    p = page  # type: ignore[assignment]
    p.set_default_timeout(20_000)
    _sign_in(p, base, "coordinator")
    p.click("header >> text=訓練")
    p.click("text=今すぐ訓練を実施する")
    p.wait_for_url("**?done=run")

    def report_link() -> bool:
        p.reload()
        return p.locator("a.report-link").count() > 0

    wait_until(report_link, 60, "the drill run has no alert (report link) yet", interval=1)
    p.click("a.report-link")
    p.wait_for_url("**/report")
    assert "緊急情報伝達 結果報告" in p.content()

    def answered() -> bool:  # the report is a snapshot: reload until kana-1's answer is in
        p.reload()
        return "返答があった団体: 1 / 2" in p.inner_text("body")

    wait_until(answered, 60, "kana-1's answer is not in the drill report", interval=1)
    assert "kana-2" in p.inner_text("body")  # never answered
    assert p.locator("svg").count() >= 3
    page_shot(p, "console-drill-report")
