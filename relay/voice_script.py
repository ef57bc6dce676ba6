"""What the call says around the message: the key menu and the confirmations (SPEC 4.3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

REPEAT_KEY = "9"


class _Option(Protocol):
    @property
    def digit(self) -> str: ...
    @property
    def label(self) -> str: ...


_MENU = {
    "ja": ("{label}の場合は{digit}を", "押してください。", "もう一度聞く場合は9を押してください。"),
    "ja-easy": (
        "{label}なら {digit}を",
        "おしてください。",
        "もういちど きくときは 9を おしてください。",
    ),
    "en": ("for {label}, press {digit}", "", "To hear the message again, press 9."),
}
_CONFIRM = {
    "ja": "{label}として受け付けました。ご協力ありがとうございました。",
    "ja-easy": "{label}と うけつけました。ありがとうございました。",
    "en": "Recorded: {label}. Thank you.",
}
_NO_INPUT = {
    "ja": "入力が確認できませんでした。SMSまたはメールのリンクからもお答えいただけます。",
    "ja-easy": "こたえが わかりませんでした。SMSや メールからも こたえられます。",
    "en": "We did not get your answer. You can also answer from the SMS or email link.",
}
_LANG = {"ja": "ja-JP", "ja-easy": "ja-JP", "en": "en-US"}


def speech_language(language: str) -> str:
    return _LANG.get(language, "ja-JP")


def menu(options: Sequence[_Option], language: str) -> str:
    first, last, repeat = _MENU.get(language, _MENU["ja"])
    parts = [first.format(label=o.label, digit=o.digit) for o in options]
    if language == "en":
        return "; ".join(p[0].upper() + p[1:] for p in parts) + ". " + repeat
    return "、".join(parts) + last + repeat


def confirmation(label: str, language: str) -> str:
    return _CONFIRM.get(language, _CONFIRM["ja"]).format(label=label)


def no_input(language: str) -> str:
    return _NO_INPUT.get(language, _NO_INPUT["ja"])
