"""Twilio's Message and Call resources and error bodies, shaped as Twilio returns them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

API_VERSION = "2010-04-01"


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def rfc2822(moment: datetime | None = None) -> str:
    """Twilio's date format: 'Thu, 24 Aug 2023 05:01:45 +0000'."""
    return format_datetime(moment or datetime.now(UTC))


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@dataclass
class Message:
    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    segments: int
    messaging_service_sid: str | None
    status_callback: str | None
    status: str = "queued"
    error_code: int | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    sent: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.created),
            "date_sent": rfc2822(self.sent) if self.sent else None,
            "date_updated": rfc2822(self.updated),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(self.segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": self.to,
            "uri": f"{uri}.json",
        }


@dataclass
class Call:
    sid: str
    account_sid: str
    to: str
    from_: str
    url: str | None
    method: str
    twiml: str | None
    status_callback: str | None
    status_callback_method: str
    events: frozenset[str]  # StatusCallbackEvent values requested
    machine_detection: bool
    status: str = "queued"
    answered_by: str | None = None
    duration: int | None = None
    sequence: int = 0  # SequenceNumber of the next status callback
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: datetime | None = None
    ended: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.updated),
            "direction": "outbound-api",
            "duration": None if self.duration is None else str(self.duration),
            "end_time": rfc2822(self.ended) if self.ended else None,
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": self.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": rfc2822(self.started) if self.started else None,
            "status": self.status,
            "subresource_uris": {
                "notifications": f"{uri}/Notifications.json",
                "recordings": f"{uri}/Recordings.json",
            },
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": f"{uri}.json",
        }
