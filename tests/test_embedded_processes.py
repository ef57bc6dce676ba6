"""The README's embedded mode as separate processes: `relay serve`, `relay worker` and
`relay scheduler` on the defaults (SQLite database, SQLite broker, nothing else configured but
where Twilio and the mail server are) send an alert to the carrier simulator and record what
its handsets report. Before the fix the worker crashed at start (Redis-only transport options
given to kombu's SQLAlchemy transport), exited 0, and nothing was ever sent."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from relay.db import engine_for, transaction
from relay.models import Delivery
from simulator import CarrierSimulator, Population, SimulatorThread
from tests.harness import TWILIO_SPEC, Worker, free_port, run_relay, wait_until

pytestmark = pytest.mark.slow

DIRECTORY = (
    "org_code,org_name,org_kind,district,parent_code,tags,contact_name,role,priority,"
    "mobile,landline,email,language\n"
    "a1,西柴自治会,association,西柴,,,山田 一郎,会長,1,090-9999-0001,,,ja\n"
    "a2,並木自治会,association,並木,,,佐藤 花子,会長,1,090-9999-0002,,,en\n"
    "b1,六浦小学校,disaster_base,六浦,,,鈴木 次郎,施設長,1,090-9999-0003,,,ja-easy\n"
)


def test_serve_worker_and_scheduler_on_the_defaults_send_an_alert(tmp_path: Path) -> None:
    account, token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    sim = CarrierSimulator(
        account, token, f"{public}/webhooks/twilio/sms", population=Population(),
        spec_path=TWILIO_SPEC if TWILIO_SPEC.exists() else None,
    )  # fmt: skip
    sim_thread = SimulatorThread(sim).start()
    try:
        # Only what a new installation must say: where it is reached, and where its carrier
        # and mail server are. Database and broker are the embedded defaults under var/.
        env = {
            "RELAY_PUBLIC_URL": public,
            "TWILIO_ACCOUNT_SID": account,
            "TWILIO_AUTH_TOKEN": token,
            "TWILIO_API_URL": sim_thread.api_url,
            "SMTP_PORT": str(sim_thread.smtp_port),
            "SMTP_STARTTLS": "false",
        }
        for step in (["db", "upgrade"], ["directory", "import", str(tmp_path / "dir.csv")]):
            (tmp_path / "dir.csv").write_text(DIRECTORY, encoding="utf-8")
            done = run_relay(step, tmp_path, env)
            assert done.returncode == 0, done.stdout + done.stderr
        processes = [
            Worker(env, log=tmp_path / "serve.log", args=["serve", "--port", str(port)],
                   newcomer=True, cwd=tmp_path),
            Worker(env, log=tmp_path / "worker.log", newcomer=True, cwd=tmp_path),
            Worker(env, log=tmp_path / "scheduler.log", args=["scheduler"], newcomer=True,
                   cwd=tmp_path),
        ]  # fmt: skip
        for process in processes:
            process.start()
        try:
            wait_until(lambda: _answers(f"{public}/healthz"), 30, "relay serve did not start")
            issued = run_relay(
                ["alert", "issue", "--template", "test", "--audience", "all", "--channels",
                 "sms", "--mode", "blast", "--test", "--json"],
                tmp_path, env,
            )  # fmt: skip
            assert issued.returncode == 0, issued.stdout + issued.stderr
            alert = json.loads(issued.stdout)
            assert alert["recipients"] == 3
            url = f"sqlite:///{tmp_path / 'var' / 'relay.db'}"

            def delivered() -> bool:
                with transaction(url) as session:
                    return (
                        session.scalar(
                            select(func.count())
                            .select_from(Delivery)
                            .where(Delivery.alert_id == alert["id"], Delivery.state == "delivered")
                        )
                        == 3
                    )

            wait_until(delivered, 90, "the embedded worker never sent the alert")
            sent = [r for r in sim.log.of_kind("sms") if r.status == 201]
            assert sorted(r.to for r in sent) == ["+819099990001", "+819099990002",
                                                  "+819099990003"]  # fmt: skip
            assert all("【テスト】" in (r.body or "") or "[TEST]" in (r.body or "") for r in sent)
            assert sim.violations == []
            for process in processes:
                assert process.proc is not None and process.proc.poll() is None, process.args
        finally:
            for process in processes:
                process.stop()
            engine_for.cache_clear()
    finally:
        sim_thread.stop()
    log = (tmp_path / "worker.log").read_text(encoding="utf-8")
    assert "Unrecoverable error" not in log and "Traceback" not in log
    assert processes[1].proc is not None and processes[1].proc.returncode == 0  # SIGTERM: clean


def test_a_worker_that_cannot_start_exits_non_zero(tmp_path: Path) -> None:
    """systemd and compose restart or report a worker by its exit code: one that died at start
    (here: its broker file is not a database) must not exit 0 as if stopped on purpose. Celery's
    app.start() dropped the code."""
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "broker.sqlite").write_bytes(b"not a database " * 300)
    done = run_relay(["worker", "--loglevel=WARNING"], tmp_path, {}, timeout=60)
    assert done.returncode != 0, (done.stdout + done.stderr)[-2000:]
    assert "Unrecoverable error" in done.stdout + done.stderr


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
