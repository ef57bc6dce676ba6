"""`relay demo`, the main job, as a user runs it: one command, embedded defaults."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.chromium import CHROMIUM, rendered_dom, screenshot
from tests.harness import run_relay

pytestmark = pytest.mark.slow


def test_demo_runs_an_exercise_and_its_report_matches_the_simulator(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = run_relay(
        ["demo", "--recipients", "120", "--speed", "120", "--workdir", str(workdir)], tmp_path
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "the report matches the simulator's record" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    # The situation report: the tallies agree with what the simulated people answered, and
    # the reminders reached people within the exercise, some of whom answered only then.
    out = " ".join(result.stdout.split())  # rich wraps lines at the terminal's width
    assert "the situation report matches the simulator's record" in out
    required = re.search(r"required answers from (\d+)/(\d+) organizations", out)
    assert required and 0 < int(required[1]) < int(required[2]), out[-3000:]
    reminders = re.search(
        r"reminders: (\d+) organizations .* were reminded 10 min after acknowledging "
        r"\(5 s here\); (\d+) of them answered after the reminder",
        out,
    )
    assert reminders and int(reminders[1]) > 0 and int(reminders[2]) > 0, out[-3000:]
    assert "避難者数" in out  # the sample has disaster bases
    reports = list(workdir.glob("drill-report-*.html"))
    assert len(reports) == 1
    html = reports[0].read_text(encoding="utf-8")
    assert "【訓練】" in html and "<svg" in html and 'id="never-answered"' in html
    assert 'id="answers"' in html and "開設状況" in html and "避難者数" in html
    assert (workdir / "relay.db").exists()  # embedded: a SQLite file, no server
    if CHROMIUM:  # the report a ward's staff would open, as Chromium draws it
        dom = rendered_dom(reports[0], tmp_path / "profile")
        assert "緊急情報伝達 結果報告" in dom and dom.count("<svg") >= 3
        shot = screenshot(reports[0], "demo-report", tmp_path / "profile")
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 40_000


def test_the_same_demo_runs_on_postgresql_and_redis(pg_url: str, tmp_path: Path) -> None:
    from tests.conftest import TEST_BROKER, _truncate, flush_test_broker

    flush_test_broker()  # skips, saying why, without Redis
    _truncate(pg_url)
    env = {
        "RELAY_DATABASE_URL": pg_url,
        "RELAY_BROKER_URL": TEST_BROKER,
        "RELAY_BROKER_PREFIX": f"relay-demo-{os.getpid()}:",
    }
    args = ["demo", "--recipients", "80", "--speed", "120", "--workdir", str(tmp_path / "demo")]
    result = run_relay(args, tmp_path, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (
        "postgresql" in result.stdout
        and "the report matches the simulator's record" in result.stdout
        and "the situation report matches the simulator's record" in result.stdout
    )
    assert not (tmp_path / "demo" / "relay.db").exists()  # nothing went to SQLite
