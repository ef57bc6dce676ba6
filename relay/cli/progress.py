"""The live progress table that `relay demo` and `relay demo --compare` redraw while an
alert runs: per channel, sent / delivered / reached / acknowledged."""

from __future__ import annotations

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from sqlalchemy import func, select

from relay.alerts.status import alert_status
from relay.db import session_factory
from relay.models import Acknowledgement, Alert, Recipient

CHANNEL_NAMES = {"sms": "SMS", "voice": "電話 voice", "email": "メール email"}


def _bar(done: int, total: int) -> Group:
    return Group(ProgressBar(total=max(total, 1), completed=done, width=10), f"{done}/{total}")


def progress_table(url: str, alert_id: int, elapsed_sim_min: float) -> Table:
    with session_factory(url)() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        status = alert_status(session, alert)
        acks = dict(
            session.execute(
                select(Acknowledgement.channel, func.count())
                .join(Recipient, Recipient.id == Acknowledgement.recipient_id)
                .where(Recipient.alert_id == alert_id)
                .group_by(Acknowledgement.channel)
            ).all()
        )
        orgs = (
            session.scalar(
                select(func.count(func.distinct(Recipient.organization_id))).where(
                    Recipient.alert_id == alert_id
                )
            )
            or 0
        )
    table = Table(
        title=f"【訓練】alert {alert.reference} — simulated {elapsed_sim_min:.0f} min",
        caption=f"organizations acknowledged {orgs - len(status['silent_orgs'])}/{orgs}",
    )
    for column in ("channel", "sent", "delivered", "reached", "acknowledged"):
        table.add_column(column)
    for channel in ("sms", "voice", "email"):
        c = status[channel]
        table.add_row(
            CHANNEL_NAMES[channel],
            _bar(c["sent"], c["planned"]),
            _bar(c["delivered"], c["sent"]),
            _bar(c["reached"], c["sent"]),
            _bar(acks.get(channel, 0), c["sent"]),
        )
    return table
