"""The drill report's HTML page, rendered by a real Chromium: a screenshot with its charts."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from relay.db import transaction
from relay.models import DrillRun
from relay.reports import formats, tally
from tests.chromium import needs_chromium, rendered_dom, screenshot
from tests.test_reports import test_report_figures_match_the_answers as build_report


@needs_chromium
def test_report_renders_in_chromium_with_its_charts(db_url: str, tmp_path: Path) -> None:
    build_report(db_url)  # a drill run with known answers
    with transaction(db_url) as session:
        run_id = session.scalars(select(DrillRun.id)).one()
        html = formats.to_html(tally.drill_report(session, run_id))
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    dom = rendered_dom(page, tmp_path / "profile")
    assert dom.count("<svg") >= 3 and "<polyline" in dom and "<rect" in dom
    assert "緊急情報伝達 結果報告" in dom
    data = screenshot(page, f"drill-report-{db_url.split(':')[0]}", tmp_path / "profile")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 40_000  # text and charts, not a blank page (a blank one is ~10 kB)
