"""Understanding an SMS reply (SPEC 4.3). A pure function: no input raises.

The text is NFKC-normalised (full-width `１` is `1`, `ＯＫ` is `OK`), trimmed and case-folded.
An optional reference code anywhere in it picks the alert (`K7QF 1`, `1 k7qf`). What remains is
an acknowledgement word, an answer digit, or else a free-text report for the ward.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from relay.messages.reference import REFERENCE_ALPHABET, REFERENCE_LENGTH

ACK_WORDS = frozenset(
    {
        "1", "了解", "りょうかい", "リョウカイ", "了承", "承知", "承知しました", "ok", "okay",
        "おk", "はい", "受信", "受信しました", "確認", "確認しました", "かくにん", "yes", "y",
        "ack", "received", "roger", "わかりました", "分かりました",
    }
)  # fmt: skip
# Polite endings people add after an acknowledgement word: 了解です, はい、確認しました.
_POLITE = ("しました", "致しました", "いたしました", "です", "でーす", "です。", "済み", "済")
# Reference codes: 4 characters of an alphabet without look-alikes, always mixing letters and
# digits (relay.alerts.issuing), so "need" or "help" are never taken for one.
_REFERENCE = re.compile(
    rf"(?<![a-z0-9])([{re.escape(REFERENCE_ALPHABET.lower())}]{{{REFERENCE_LENGTH}}})(?![a-z0-9])"
)
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)

Kind = Literal["ack", "answer", "report", "empty"]


@dataclass(frozen=True)
class Reply:
    kind: Kind
    digit: str | None = None  # the answer option chosen ("1" for an acknowledgement)
    reference: str | None = None  # upper-case reference code candidate, if one was written
    text: str = ""  # the normalised text, kept with a report


def normalize(body: str) -> str:
    return unicodedata.normalize("NFKC", body).strip().casefold()


def _is_ack(word: str) -> bool:
    return word in ACK_WORDS or any(
        word.endswith(ending) and word[: -len(ending)] in ACK_WORDS for ending in _POLITE
    )


def parse_reply(body: str, answer_digits: Collection[str] = ("1", "2", "3")) -> Reply:
    text = normalize(body or "")[:1600]
    if not text:
        return Reply("empty")
    reference = None
    rest = text
    for match in _REFERENCE.finditer(text):
        candidate = match.group(1)
        if any(ch.isdigit() for ch in candidate) and any(ch.isalpha() for ch in candidate):
            reference = candidate.upper()  # codes mix letters and digits; words do not
            rest = (text[: match.start()] + " " + text[match.end() :]).strip()
            break
    words = [w for w in _NOISE.split(rest) if w]
    squashed = "".join(words)
    if squashed.isdigit() and len(squashed) == 1:
        if squashed == "1":
            return Reply("ack", "1", reference, text)
        if squashed in answer_digits:
            return Reply("answer", squashed, reference, text)
    if words and (_is_ack(squashed) or all(_is_ack(w) for w in words)):
        return Reply("ack", "1", reference, text)
    if not words:
        return Reply("empty", None, reference, text)
    return Reply("report", None, reference, text)
