"""The drill report's HTML page, rendered by a real Chromium: a screenshot with its charts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from relay import report_formats, reports
from relay.db import transaction
from relay.models import DrillRun
from tests.test_reports import test_report_figures_match_the_answers as build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_report_renders_in_chromium_with_its_charts(db_url: str, tmp_path: Path) -> None:
    build_report(db_url)  # a drill run with known answers
    with transaction(db_url) as session:
        run_id = session.scalars(select(DrillRun.id)).one()
        html = report_formats.to_html(reports.drill_report(session, run_id))
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert dom.count("<svg") >= 3 and "<polyline" in dom and "<rect" in dom
    assert "緊急情報伝達 結果報告" in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1000,2200", page.as_uri()],
        capture_output=True,
        timeout=60,
        check=True,
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 40_000  # text and charts, not a blank page (a blank one is ~10 kB)
