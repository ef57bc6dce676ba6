"""Answers to an alert's questions in one SMS reply (issue 16). A pure function: no input raises.

Two ways to write them, as the help text explains:
- **In question order**: `1 2 0 3` — one number per question that takes a number (choice,
  yes/no, number), in the order the organization was asked; 0 skips a choice or yes/no
  question (a number question takes 0 as its value). Words after the numbers answer the first
  free-text question: `1 2 2 1 毛布が足りない`.
- **By name**: `避難者 45`, `開設 1 避難者 45` — a word that starts a question's label (at least
  two characters: 避難者 for 避難者数) or is its id, then the answer.
The text is NFKC-normalised first, so full-width digits and spaces (`１　２　０　３`) are the
same as ASCII ones, as for acknowledgements (relay/replies/parsing.py). A reply of one word is
never read as answers: `1` stays an acknowledgement.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from relay.questions.catalog import AnswerError, Question

_TOKEN = re.compile(r"[\s,、，;；/]+")
_NUMBER = re.compile(r"^\d{1,6}$")


@dataclass(frozen=True)
class SmsAnswers:
    """What a reply answered (question id → stored value) and what could not be taken, each
    problem a short line safe to text back. Empty `values` and `problems`: not an answer."""

    values: dict[str, int | str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def is_answer(self) -> bool:
        return bool(self.values) or bool(self.problems)


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _by_name(word: str, questions: Sequence[Question]) -> Question | None:
    folded = word.casefold()
    for question in questions:
        if folded == question.id.casefold():
            return question
    if len(word) < 2:
        return None
    return next((q for q in questions if q.label("ja").startswith(word)), None)


def parse_sms_answers(text: str, questions: Sequence[Question]) -> SmsAnswers:
    """The answers in `text` to `questions` (the organization's, in the order asked)."""
    tokens = [t for t in _TOKEN.split(_normal(text)) if t]
    if len(tokens) < 2 or not questions:
        # One word is an acknowledgement or an answer digit (`1`, `了解`, `2` = 支援が必要:
        # relay/replies/parsing.py), as before questions existed.
        return SmsAnswers()
    if _NUMBER.match(tokens[0]):
        return _in_order(tokens, questions)
    if _by_name(tokens[0], questions) is not None:
        return _named(tokens, questions)
    return SmsAnswers()


def _in_order(tokens: list[str], questions: Sequence[Question]) -> SmsAnswers:
    numbered = [q for q in questions if q.kind != "text"]
    texts = [q for q in questions if q.kind == "text"]
    numbers: list[str] = []
    while tokens and _NUMBER.match(tokens[0]):
        numbers.append(tokens.pop(0))
    values: dict[str, int | str] = {}
    problems: list[str] = []
    if len(numbers) > len(numbered):
        problems.append(f"回答は{len(numbered)}問分です（{len(numbers)}個の数字がありました）")
    for question, given in zip(numbered, numbers, strict=False):
        if given == "0" and question.kind != "number":
            continue  # skipped
        try:
            values[question.id] = question.check(given)
        except AnswerError as exc:
            problems.append(str(exc))
    if tokens:
        if texts:
            try:
                values[texts[0].id] = texts[0].check(" ".join(tokens))
            except AnswerError as exc:
                problems.append(str(exc))
        else:
            problems.append("数字の後の文は回答になりません")
    return SmsAnswers(values, tuple(problems))


def _named(tokens: list[str], questions: Sequence[Question]) -> SmsAnswers:
    values: dict[str, int | str] = {}
    problems: list[str] = []
    while tokens:
        word = tokens.pop(0)
        question = _by_name(word, questions)
        if question is None:
            problems.append(f"「{word}」に当たる質問がありません")
            break
        if question.kind == "text":
            given, tokens = " ".join(tokens), []
        elif tokens:
            given = tokens.pop(0)
        else:
            problems.append(f"{question.label('ja')}: 答えがありません")
            break
        try:
            values[question.id] = question.check(given)
        except AnswerError as exc:
            problems.append(str(exc))
    return SmsAnswers(values, tuple(problems))
