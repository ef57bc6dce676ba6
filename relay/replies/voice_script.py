"""What the call says around the message: the key menu and the confirmations (SPEC 4.3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from relay.questions.catalog import Question

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
# With spoken answers, the first option (1, the acknowledgement) can also be said: one
# sentence of its own, so the key menu that follows keeps its shape.
_SPEECH_FIRST = {
    "ja": "{label}の場合は{digit}を押すか、『はい』とお答えください。",
    "ja-easy": "{label}なら {digit}を おすか、「はい」と いって ください。",
    "en": "For {label}, press {digit} or say yes.",
}
# What the speech recognizer is told to expect (Twilio's <Gather hints>): the words
# relay.replies.parsing understands as an acknowledgement.
_SPEECH_HINTS = {
    "ja": ("はい", "了解", "確認しました", "わかりました"),
    "ja-easy": ("はい", "了解", "確認しました", "わかりました"),
    "en": ("yes", "OK", "received"),
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


_REPORT_INTRO = {
    "ja": "続けて、状況の報告をお願いします。",
    "ja-easy": "つづけて、ようすを おしえて ください。",
    "en": "Next, please report the situation.",
}
_CHOICE = {
    "ja": "{label}。{options}を押してください。",
    "ja-easy": "{label}。{options}を おしてください。",
    "en": "{label}. {options}.",
}
_OPTION = {
    "ja": "{label}は{number}",
    "ja-easy": "{label}は {number}",
    "en": "for {label}, press {number}",
}
_NUMBER = {
    "ja": "{label}を数字で入力し、最後にシャープを押してください。",
    "ja-easy": "{label}を すうじで いれて、さいごに シャープを おしてください。",
    "en": "{label}: enter the number, then press the hash key.",
}
_HEARD = {
    "ja": "{label}、{answer}、と受け付けました。",
    "ja-easy": "{label}、{answer}、と うけつけました。",
    "en": "{label}: {answer}, recorded.",
}
_AGAIN = {
    "ja": "もう一度お願いします。",
    "ja-easy": "もういちど おねがいします。",
    "en": "Once more, please.",
}
_REPORT_DONE = {
    "ja": (
        "報告を受け付けました。ほかの項目はSMSやメールのリンクから報告できます。"
        "ありがとうございました。"
    ),
    "ja-easy": "ほうこくを うけつけました。ありがとうございました。",
    "en": (
        "Your report was recorded; the other items can be sent from the SMS or email link. "
        "Thank you."
    ),
}


def _pick(table: dict[str, str], language: str) -> str:
    return table.get(language, table["ja"])


def report_intro(language: str) -> str:
    return _pick(_REPORT_INTRO, language)


def question_prompt(question: Question, language: str) -> str:
    """A situation-report question read out with its keys (issue 16)."""
    label = question.label(language)
    if question.kind == "number":
        return _pick(_NUMBER, language).format(label=label)
    joiner = "; " if language == "en" else "、"
    options = joiner.join(
        _pick(_OPTION, language).format(label=o.label(language), number=o.number)
        for o in question.choices()
    )
    return _pick(_CHOICE, language).format(label=label, options=options)


def heard(question: Question, value: int | str, language: str) -> str:
    """What was taken, said back so the caller can tell a wrong key."""
    return _pick(_HEARD, language).format(
        label=question.label(language), answer=question.shown(value, language)
    )


def again(language: str) -> str:
    return _pick(_AGAIN, language)


def report_done(language: str) -> str:
    return _pick(_REPORT_DONE, language)


def speech_language(language: str) -> str:
    return _LANG.get(language, "ja-JP")


def speech_hints(language: str) -> tuple[str, ...]:
    return _SPEECH_HINTS.get(language, _SPEECH_HINTS["ja"])


def menu(options: Sequence[_Option], language: str, *, speech: bool = False) -> str:
    """The key menu; with `speech`, the first option also invites a spoken 'はい'."""
    first, last, repeat = _MENU.get(language, _MENU["ja"])
    lead = ""
    if speech and options:
        said = _SPEECH_FIRST.get(language, _SPEECH_FIRST["ja"])
        lead = said.format(label=options[0].label, digit=options[0].digit)
        lead += " " if language == "en" else ""
        options = options[1:]
    parts = [first.format(label=o.label, digit=o.digit) for o in options]
    if not parts:
        return lead + repeat
    if language == "en":
        return lead + "; ".join(p[0].upper() + p[1:] for p in parts) + ". " + repeat
    return lead + "、".join(parts) + last + repeat


def confirmation(label: str, language: str) -> str:
    return _CONFIRM.get(language, _CONFIRM["ja"]).format(label=label)


def no_input(language: str) -> str:
    return _NO_INPUT.get(language, _NO_INPUT["ja"])
